"""Sentences the data-preparation tests speak with espeak-ng (shared by conftest and tests)."""

SENTENCES = [
    "The morning train left the station a few minutes after seven.",
    "She planted tomatoes, beans and a row of tall sunflowers in the garden.",
    "Our neighbour repairs old radios in a small shed behind his house.",
    "The library closes early on Sundays during the summer months.",
    "He painted the wooden fence a bright shade of blue.",
    "A cold wind blew across the harbour as the boats came in.",
    "Please remember to water the plants before you leave for work.",
    "The children built a castle of sand near the edge of the water.",
]

OTHER_TEXT = [
    "Quantum computers may one day factor enormous numbers very quickly.",
    "The committee postponed its decision until the following spring.",
    "Elephants communicate using low rumbling sounds across great distances.",
    "Investors worried about inflation and rising interest rates.",
    "A violin concerto filled the cathedral with a haunting melody.",
    "Volcanic ash grounded flights across northern Europe for a week.",
    "The software update fixed several security vulnerabilities overnight.",
    "Marathon runners trained for months in the mountain heat.",
]

LANE = "tts_prod_train_nemo"
