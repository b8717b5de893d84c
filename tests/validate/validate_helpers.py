"""Plain data shared by the validate tests (import by this name, not from conftest)."""

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "She sells sea shells by the sea shore on a sunny afternoon.",
    "Is it going to rain tomorrow morning?",
]
