"""Text for voices, without torch or NeMo: the lane's English normaliser and exact replays of NeMo's
TTS tokenizers (characters, ARPABET + EnglishG2p, IPA + IpaG2p) for the ONNX bundle.

- `normalize(text)` / `NORMALIZER_ID` (lane.text.normalize): written English -> spoken words, the one
  normaliser for training data, validation and serving;
- `load_tokenizer(desc, files_dir)` (lane.text.tokenizers): a tokenizer from the description and G2P
  files that lane.nemo.tokenizer.export_tokenizer wrote; `.encode(text)` equals NeMo's ids at
  FastPitch inference, `.describe()` says what the voice speaks;
- lane.text.g2p: the G2P replays and the dictionary file format.
"""

from .normalize import NORMALIZER_ID, normalize
from .tokenizers import Tokenizer, TokenizerError, load_tokenizer, load_tokenizer_file

__all__ = ["NORMALIZER_ID", "Tokenizer", "TokenizerError", "load_tokenizer", "load_tokenizer_file", "normalize"]
