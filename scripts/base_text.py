"""Seeded English sentence generator for the project-trained base corpus (scripts/train_base.py).

Two sources, mixed:

* a template grammar over a hand-written lexicon (nouns with plurals, verbs with their forms, adjectives,
  adverbs, names, places, function words) that makes statements, questions, exclamations, compound
  sentences with commas and semicolons, quotes, contractions and possessives, lists, and numbers
  written with digits (times, years, counts, ordinals, money, percentages, decimals) that the lane's
  own normaliser (lane.data.text.normalize_text) spells out, exactly as it does for a user's text;
* "frequent-word" sentences: runs of words drawn from the vocabulary of pocketsphinx's en-us language
  model (the wheel the lane already depends on), weighted by their unigram probability and restricted
  to words in its cmudict, so the spelling-to-sound coverage goes far beyond the lexicon.

Nothing here is evaluation text: `forbidden_texts()` collects every sentence the demo, the validate
stage and the tests speak (scripts/make_demo_data.py, configs/eval/sentences.txt, lane/nemo/tinydata.py,
tests/data/dataprep_texts.py; found by file name, parsed, not imported), and `SentenceGenerator` drops
any generated sentence equal to one of them or sharing a run of five words with one.

Every sentence is returned normalised (lowercase, numbers spelled out) and checked against the
tokenizer vocabulary (lane.data.text.VOCAB). Same seed -> same sentences.
"""

from __future__ import annotations

import ast
import math
import random
import re
from collections.abc import Iterable
from pathlib import Path

# ------------------------------------------------------------------------------------ lexicon
# nouns: "singular" or "singular/plural" for irregular plurals
NOUNS = ["apple", "arrow", "attic", "badge", "bakery", "balloon", "banana", "basket", "battery", "beach/beaches", "beard", "bench/benches", "bicycle", "blanket", "bottle", "boulder", "bracelet", "bridge", "broom", "bucket", "buffalo/buffaloes", "butterfly/butterflies", "cabbage", "cabin", "cable", "camera", "canal", "candle", "canoe", "canyon", "captain", "carpet", "castle", "ceiling", "cellar", "chair", "chapter", "cheese", "cherry/cherries", "chimney", "church/churches", "circus/circuses", "cliff", "cloud", "coast", "coffee", "coin", "collar", "comet", "compass/compasses", "cottage", "cousin", "cradle", "crayon", "crowd", "crown", "cupboard", "curtain", "cushion", "daisy/daisies", "desert", "diamond", "dinner", "doctor", "dolphin", "donkey", "dragon", "drawer", "drum", "eagle", "elbow", "elephant", "engine", "envelope", "fabric", "factory/factories", "falcon", "feather", "fence", "ferry/ferries", "festival", "fiddle", "field", "finger", "flag", "flame", "flower", "fountain", "fox/foxes", "frog", "garage", "garden", "ghost", "giant", "giraffe", "glacier", "glove", "goat", "grape", "guitar", "hammer", "harbour", "harvest", "hedge", "helmet", "hen", "hill", "hobby/hobbies", "honey", "horizon", "horse", "hospital", "island", "jacket", "jar", "jewel", "journey", "juice", "jungle", "kangaroo", "kettle", "key", "kingdom", "kitchen", "kite", "knife/knives", "knight", "knot", "ladder", "lake", "lamp", "lantern", "laptop", "lawyer", "leaf/leaves", "lemon", "lesson", "letter", "lighthouse", "lion", "lizard", "lobster", "locket", "magnet", "mailbox/mailboxes", "mango/mangoes", "map", "marble", "meadow", "melody/melodies", "meteor", "microphone", "mirror", "monkey", "monster", "mountain", "mouse/mice", "mushroom", "musician", "napkin", "necklace", "needle", "nephew", "nest", "novel", "nurse", "oak", "ocean", "octopus/octopuses", "office", "onion", "orange", "orchard", "owl", "oyster", "paddle", "painting", "palace", "pancake", "panther", "parade", "parcel", "parrot", "passenger", "peach/peaches", "peacock", "pebble", "pencil", "penguin", "pepper", "photograph", "piano", "pillow", "pilot", "pirate", "planet", "plate", "pocket", "poem", "potato/potatoes", "puddle", "pumpkin", "puppet", "puzzle", "pyramid", "quarrel", "queen", "question", "quilt", "rabbit", "raccoon", "radio", "railway", "rainbow", "raven", "receipt", "recipe", "ribbon", "riddle", "river", "robot", "rocket", "roof", "rope", "saddle", "sailor", "salad", "sandwich/sandwiches", "saucepan", "scarf/scarves", "scissors/scissors", "scooter", "shadow", "shelf/shelves", "shepherd", "shovel", "signal", "silver", "singer", "skeleton", "sketch/sketches", "sleeve", "spider", "spoon", "squirrel", "stadium", "staircase", "statue", "stomach", "storm", "stranger", "stream", "submarine", "suitcase", "summit", "sweater", "swing", "sword", "symphony/symphonies", "table", "teacher", "telephone", "telescope", "temple", "thief/thieves", "thimble", "thunder", "ticket", "tiger", "toaster", "tomato/tomatoes", "tortoise", "towel", "tower", "tractor", "traffic/traffic", "treasure", "tree", "triangle", "trophy/trophies", "trumpet", "tunnel", "turtle", "umbrella", "uncle", "unicorn", "valley", "vase", "vegetable", "village", "violin", "volcano/volcanoes", "wagon", "wallet", "walrus/walruses", "wardrobe", "watch/watches", "waterfall", "whale", "wheel", "whistle", "window", "wizard", "wolf/wolves", "woman/women", "worm", "wrench/wrenches", "yacht", "yard", "zebra", "zipper", "child/children", "man/men", "person/people", "tooth/teeth", "foot/feet", "knowledge/knowledge", "rhythm", "thought", "laughter", "daughter", "neighbour", "journal", "physician", "pharmacy/pharmacies", "chemist", "orchestra", "schedule", "anchor", "xylophone", "quartet", "plumber", "sphinx/sphinxes", "jigsaw", "gnome", "psalm", "wreath", "yoghurt", "zucchini", "chauffeur", "bouquet", "croissant", "debris/debris", "genre", "rendezvous/rendezvous", "ballet", "buffet", "champagne"]

# verbs: base/past/participle ("" = regular)
VERBS = ["accept", "add", "admire", "allow", "answer", "arrange", "arrive", "ask", "bake/baked/baked", "balance", "borrow", "bounce", "breathe", "brush", "build/built/built", "burn", "buy/bought/bought", "call", "carry/carried/carried", "catch/caught/caught", "change", "chase/chased/chased", "check", "choose/chose/chosen", "clean", "climb", "close/closed/closed", "collect", "count", "cover", "crawl", "cross", "cut/cut/cut", "dance/danced/danced", "decide/decided/decided", "deliver", "describe/described/described", "discover", "draw/drew/drawn", "dream", "drink/drank/drunk", "drive/drove/driven", "drop/dropped/dropped", "enjoy", "explain", "fetch", "fill", "find/found/found", "finish", "fix", "fold", "follow", "forget/forgot/forgotten", "forgive/forgave/forgiven", "gather", "give/gave/given", "grab/grabbed/grabbed", "greet", "grow/grew/grown", "guess", "hang/hung/hung", "hear/heard/heard", "help", "hide/hid/hidden", "hold/held/held", "hug/hugged/hugged", "hurry/hurried/hurried", "imagine/imagined/imagined", "invent", "invite/invited/invited", "jump", "keep/kept/kept", "kick", "knit/knitted/knitted", "knock", "know/knew/known", "laugh", "learn", "leave/left/left", "lend/lent/lent", "lift", "like/liked/liked", "listen", "load", "lose/lost/lost", "love/loved/loved", "make/made/made", "measure/measured/measured", "mend", "mix", "notice/noticed/noticed", "open", "order", "pack", "paint", "pass/passed/passed", "pay/paid/paid", "pick", "plan/planned/planned", "plant", "play", "polish/polished/polished", "pour", "praise/praised/praised", "prepare/prepared/prepared", "print", "promise/promised/promised", "pull", "push/pushed/pushed", "question", "reach", "read/read/read", "receive/received/received", "remember", "repair", "rescue/rescued/rescued", "return", "ring/rang/rung", "rinse/rinsed/rinsed", "rub/rubbed/rubbed", "save/saved/saved", "scatter", "scratch/scratched/scratched", "search/searched/searched", "see/saw/seen", "sell/sold/sold", "send/sent/sent", "sew/sewed/sewn", "shake/shook/shaken", "share/shared/shared", "shout", "show/showed/shown", "sing/sang/sung", "sketch/sketched/sketched", "sleep/slept/slept", "slice/sliced/sliced", "smell", "sneeze/sneezed/sneezed", "solve/solved/solved", "sort", "spill", "spin/spun/spun", "squeeze/squeezed/squeezed", "stack", "start", "steal/stole/stolen", "stir/stirred/stirred", "stop/stopped/stopped", "study/studied/studied", "swallow", "sweep/swept/swept", "swim/swam/swum", "take/took/taken", "taste/tasted/tasted", "teach/taught/taught", "tear/tore/torn", "tell/told/told", "thank", "throw/threw/thrown", "tickle/tickled/tickled", "tie/tied/tied", "touch/touched/touched", "trace/traced/traced", "travel/travelled/travelled", "try/tried/tried", "tune/tuned/tuned", "turn", "twist", "understand/understood/understood", "unlock", "unpack", "use/used/used", "visit", "wake/woke/woken", "walk", "wash/washed/washed", "watch/watched/watched", "wave/waved/waved", "weigh", "whisper", "win/won/won", "wipe/wiped/wiped", "wonder", "wrap/wrapped/wrapped", "write/wrote/written", "yawn"]

ADJECTIVES = ["angry", "ancient", "awkward", "bitter", "blue", "bold", "brave", "breezy", "brief", "bright", "brilliant", "broken", "bumpy", "busy", "calm", "careful", "cheap", "cheerful", "chilly", "clever", "cloudy", "clumsy", "cold", "colourful", "comfortable", "crisp", "crooked", "curious", "damp", "dangerous", "dark", "dazzling", "deep", "delicate", "delightful", "dizzy", "dusty", "eager", "early", "elegant", "empty", "enormous", "enthusiastic", "exhausted", "fancy", "fierce", "filthy", "fluffy", "foggy", "fragile", "frantic", "friendly", "frozen", "fuzzy", "generous", "gentle", "gigantic", "glamorous", "gloomy", "golden", "graceful", "green", "grumpy", "handsome", "happy", "harsh", "heavy", "helpful", "hollow", "honest", "huge", "humble", "hungry", "icy", "jealous", "jolly", "juicy", "kind", "large", "lazy", "little", "lively", "lonely", "loud", "lucky", "magnificent", "marvellous", "mellow", "messy", "mighty", "modern", "muddy", "mysterious", "narrow", "naughty", "nervous", "noisy", "obedient", "odd", "orange", "ordinary", "peaceful", "pleasant", "polite", "precious", "proud", "purple", "quaint", "quick", "quiet", "rapid", "rare", "ripe", "rough", "round", "rusty", "salty", "scary", "shallow", "sharp", "shiny", "shy", "silly", "slippery", "slow", "smooth", "soft", "sour", "spicy", "splendid", "square", "steep", "sticky", "stormy", "strange", "striped", "strong", "stubborn", "sunny", "superb", "sweet", "swift", "tall", "tame", "tender", "thick", "thin", "thirsty", "tidy", "tiny", "tired", "tough", "tremendous", "ugly", "unusual", "vast", "velvet", "vivid", "warm", "weary", "wet", "whispering", "wicked", "wide", "wild", "wise", "witty", "wooden", "worried", "yellow", "young", "zealous"]

ADVERBS = ["quickly", "slowly", "quietly", "loudly", "carefully", "gently", "happily", "sadly", "suddenly", "finally", "eventually", "often", "rarely", "always", "never", "sometimes", "already", "almost", "nearly", "barely", "truly", "honestly", "proudly", "bravely", "calmly", "eagerly", "gracefully", "nervously", "patiently", "politely", "silently", "warmly", "wildly", "yesterday", "today", "tonight", "tomorrow", "soon", "later", "outside", "upstairs", "downstairs", "abroad", "everywhere", "somewhere", "anyway", "perhaps", "certainly", "probably"]

NAMES = ["Alice", "Arthur", "Beatrice", "Benjamin", "Charlotte", "Clara", "Daniel", "Dorothy", "Edmund", "Eleanor", "Felix", "Fiona", "George", "Grace", "Harriet", "Henry", "Isaac", "Isabel", "Jacob", "Julia", "Kenneth", "Katherine", "Leonard", "Lucy", "Martin", "Margaret", "Nathan", "Nora", "Oliver", "Olivia", "Patrick", "Phoebe", "Quentin", "Rachel", "Robert", "Rosalind", "Samuel", "Sophie", "Theodore", "Tabitha", "Victor", "Vivian", "Walter", "Wendy", "Xavier", "Yvonne", "Zachary", "Zoe", "Hugh", "Agnes", "Douglas", "Miriam", "Gareth", "Ingrid", "Malcolm", "Penelope", "Rupert", "Siobhan", "Angus", "Bridget"]

PLACES = ["London", "Paris", "Berlin", "Madrid", "Lisbon", "Vienna", "Prague", "Dublin", "Edinburgh", "Glasgow", "Cardiff", "Oslo", "Stockholm", "Helsinki", "Athens", "Cairo", "Nairobi", "Lagos", "Mumbai", "Delhi", "Tokyo", "Seoul", "Beijing", "Sydney", "Melbourne", "Auckland", "Toronto", "Vancouver", "Chicago", "Boston", "Denver", "Houston", "Seattle", "Jamaica", "Barbados", "Trinidad", "Canada", "Mexico", "Brazil", "Peru", "Chile", "Argentina", "Norway", "Sweden", "Iceland", "Egypt", "Kenya", "India", "Japan", "Australia", "Scotland", "Wales", "Ireland", "Manchester", "Liverpool", "Birmingham", "Bristol", "Cornwall"]

PREPOSITIONS = ["in", "on", "under", "behind", "beside", "near", "inside", "across", "through", "over",
                "around", "beyond", "along", "below", "above", "towards", "past", "between the trees and"]
PLACE_PHRASES = ["in the garden", "at the station", "by the river", "on the hill", "in the kitchen", "at school",
                 "in the city", "near the harbour", "behind the barn", "under the bridge", "at the market",
                 "in the library", "on the train", "at the office", "in the forest", "by the window",
                 "on the beach", "at the museum", "in the attic", "across the street", "up the stairs",
                 "down the road", "at the corner shop", "in the meadow", "on the roof", "at home"]
TIME_PHRASES = ["this morning", "last night", "after lunch", "before dawn", "every Tuesday", "on Friday",
                "in the spring", "during the winter", "at midnight", "at noon", "next week", "last year",
                "in the evening", "on weekends", "once a month", "twice a day", "in August", "in October",
                "on Monday morning", "before breakfast", "after the storm", "since Thursday"]
SUBJ_PRONOUNS = ["I", "you", "he", "she", "we", "they", "it"]
OBJ_PRONOUNS = ["me", "you", "him", "her", "us", "them", "it"]
CONTRACTIONS = ["I'm", "you're", "he's", "she's", "we're", "they're", "it's", "I've", "we've", "they've",
                "I'll", "you'll", "she'll", "we'll", "they'll", "I'd", "he'd", "we'd", "that's", "there's",
                "who's", "let's"]
NEGATIONS = ["don't", "doesn't", "didn't", "can't", "won't", "shouldn't", "wouldn't", "couldn't", "isn't",
             "aren't", "wasn't", "haven't"]
INTERJECTIONS = ["Oh", "Well", "Look", "Hey", "Wow", "Ah", "Listen", "Hmm", "Goodness", "Alas", "Hooray", "Oops",
                 "Honestly", "Right", "Okay", "Sure", "Indeed", "Really"]
SHORT = ["No.", "No, thanks.", "Of course.", "Not yet.", "Maybe later?", "Okay, fine.", "Good morning.",
         "Good night!", "See you soon.", "Why not?", "Really?", "Absolutely!", "Never mind.", "Hold on!",
         "Come in.", "Excuse me?", "Well done!", "Help!", "Sorry.", "Goodbye!", "Not at all.", "Over here!",
         "Be careful!", "I agree.", "Certainly.", "How odd!", "What now?", "All right.", "Sit down, please.",
         "Happy birthday!", "Nice to meet you.", "Who's there?", "It's late.", "Let's go!", "Perhaps.",
         "Quite so.", "Indeed.", "Hurry up!", "Look out!", "Cheers!", "Fair enough.", "Say that again?"]
CONJ = ["and", "but", "so", "yet", "or"]
SUBORD = ["because", "although", "while", "when", "before", "after", "since", "unless", "until", "if", "as soon as",
          "even though", "whenever"]
WH = ["Where", "When", "Why", "How", "What", "Which", "Who", "Whose"]
AUX_Q = ["Did", "Will", "Can", "Could", "Should", "Would", "Do", "Does", "Must", "Might"]
UNITS = ["minutes", "hours", "days", "weeks", "metres", "miles", "kilograms", "pages", "steps", "years", "seconds",
         "litres", "degrees", "points", "floors", "boxes", "chairs", "tickets"]
SAY = ["said", "asked", "whispered", "shouted", "replied", "explained", "muttered", "announced", "laughed", "sighed"]

_DOUBLE_FINAL = re.compile(r"[^aeiou][aeiou][bdgmnprt]$")


def _plural(n: str) -> str:
    if "/" in n:
        return n.split("/")[1]
    if n.endswith("y") and n[-2] not in "aeiou":
        return n[:-1] + "ies"
    if n.endswith(("s", "x", "z", "ch", "sh")):
        return n + "es"
    return n + "s"


def _sing(n: str) -> str:
    return n.split("/")[0]


def _verb_forms(v: str) -> tuple[str, str, str, str, str]:
    """(base, third person, past, participle, -ing)."""
    parts = v.split("/")
    base = parts[0]
    if len(parts) == 3:
        past, part = parts[1], parts[2]
    elif base.endswith("e"):
        past = part = base + "d"
    elif base.endswith("y") and base[-2] not in "aeiou":
        past = part = base[:-1] + "ied"
    else:
        past = part = base + "ed"
    if base.endswith(("s", "x", "z", "ch", "sh", "o")):
        third = base + "es"
    elif base.endswith("y") and base[-2] not in "aeiou":
        third = base[:-1] + "ies"
    else:
        third = base + "s"
    if base.endswith("ie"):
        ing = base[:-2] + "ying"
    elif base.endswith("e") and not base.endswith(("ee", "ye", "oe")):
        ing = base[:-1] + "ing"
    elif _DOUBLE_FINAL.search(base) and len(base) <= 4:
        ing = base + base[-1] + "ing"
    else:
        ing = base + "ing"
    return base, third, past, part, ing


def _a(word: str) -> str:
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


# ------------------------------------------------------------------------------------ forbidden texts
FORBIDDEN_SOURCES = {  # file name -> module-level list names holding sentences (or (id, text) pairs)
    "make_demo_data.py": ("SENTENCES", "LJSPEECH", "IMPOSTOR"),
    "tinydata.py": ("SENTENCES",),
    "dataprep_texts.py": ("SENTENCES", "OTHER_TEXT"),
}


def forbidden_texts(root: Path) -> list[str]:
    """Every evaluation / demo / test sentence in the repo: configs/eval/sentences.txt and the lists named in
    FORBIDDEN_SOURCES, wherever those files live now (found by name under scripts/, lane/, tests/)."""
    out: list[str] = []
    ev = root / "configs" / "eval" / "sentences.txt"
    if ev.exists():
        out += [ln.strip() for ln in ev.read_text(encoding="utf-8").splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]
    for fname, names in FORBIDDEN_SOURCES.items():
        found = [p for d in ("scripts", "lane", "tests") for p in sorted((root / d).rglob(fname))]
        if not found:
            raise FileNotFoundError(f"{fname} not found under {root}: cannot exclude its sentences")
        for path in found:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in names for t in node.targets):
                    for item in ast.literal_eval(node.value):
                        out.append(item[-1] if isinstance(item, tuple) else item)
    return out


# ------------------------------------------------------------------------------------ frequent words
# words a shipped corpus should not put in anyone's mouth (the LM is trained on news and web text)
BLOCKLIST = frozenset(["rape", "raped", "rapes", "raping", "rapist", "rapists", "nigger", "niggers", "nigga", "negro", "negroes", "fag", "fags", "faggot", "faggots", "dyke", "dykes", "retard", "retarded", "retards", "spic", "spics", "kike", "kikes", "chink", "chinks", "gook", "gooks", "wetback", "wetbacks", "tranny", "trannies", "slut", "sluts", "whore", "whores", "bitch", "bitches", "cunt", "cunts", "fuck", "fucked", "fucker", "fuckers", "fucking", "fucks", "shit", "shits", "shitty", "bullshit", "cock", "cocks", "dick", "dicks", "pussy", "pussies", "porn", "porno", "pornography", "nazi", "nazis", "hitler", "holocaust", "genocide", "terrorist", "terrorists", "terrorism", "murder", "murdered", "murderer", "murders", "suicide", "suicides", "molest", "molested", "molestation", "pedophile", "pedophiles", "incest", "bastard", "bastards", "asshole", "assholes", "jihad", "massacre", "slaughter", "killed", "killing", "kill", "kills"])


def lm_vocabulary(max_words: int = 40000) -> list[tuple[str, float]]:
    """(word, unigram log10-ish score) for the most probable plain words of pocketsphinx's en-us LM that
    are also in its cmudict: letters (and an inner apostrophe) only, at least 2 letters."""
    import os

    import pocketsphinx as ps

    mdir = os.path.join(os.path.dirname(ps.__file__), "model", "en-us")
    lm = ps.NGramModel.readfile(os.path.join(mdir, "en-us.lm.bin"))
    words: set[str] = set()
    with open(os.path.join(mdir, "cmudict-en-us.dict"), encoding="utf-8", errors="replace") as fh:
        for line in fh:
            w = line.split(" ", 1)[0]
            if "(" in w:
                continue
            if re.fullmatch(r"[a-z]+(?:'[a-z]+)?", w) and len(w) >= 2 and w not in BLOCKLIST:
                words.add(w)
    scored = []
    for w in sorted(words):
        p = lm.prob([w])
        if p > -500_000_000:  # unknown words come back as a huge negative
            scored.append((w, float(p)))
    scored.sort(key=lambda x: (-x[1], x[0]))
    return scored[:max_words]


# ------------------------------------------------------------------------------------ generator
class SentenceGenerator:
    """`SentenceGenerator(seed, forbidden).sentences(n)` -> n distinct normalised sentences."""

    def __init__(self, seed: int, forbidden: Iterable[str] = (), *, lm_words: list[tuple[str, float]] | None = None,
                 frequent_fraction: float = 0.3) -> None:
        from lane.data.text import normalize_text

        self.norm = normalize_text
        self.rng = random.Random(seed)
        self.nouns = NOUNS
        self.verbs = [_verb_forms(v) for v in VERBS]
        self.forbidden = {self._key(t) for t in forbidden}
        self.forbidden_5grams = set()
        for t in forbidden:
            w = self._key(t).split()
            self.forbidden_5grams.update(tuple(w[i:i + 5]) for i in range(len(w) - 4))
        self.frequent_fraction = frequent_fraction if lm_words else 0.0
        if lm_words:
            # sample proportionally to p**0.35: frequent words still dominate, the long tail gets its share
            base = max(s for _, s in lm_words)
            self.lm_words = [w for w, _ in lm_words]
            scale = 0.35 * math.log(1.0001)  # pocketsphinx logmath base 1.0001
            self.lm_cum = list(_cumsum(math.exp((s - base) * scale) for _, s in lm_words))
        self.rejected_forbidden = 0

    @staticmethod
    def _key(text: str) -> str:
        from lane.data.text import normalize_text

        return " ".join(re.findall(r"[a-z']+", normalize_text(text)))

    # --- slots
    def c(self, seq):
        return self.rng.choice(seq)

    def noun(self, plural: bool | None = None) -> str:
        n = self.c(self.nouns)
        if plural is None:
            plural = self.rng.random() < 0.3
        return _plural(n) if plural else _sing(n)

    def np(self, plural: bool | None = None, det: bool = True) -> str:
        """A noun phrase: determiner, optional adjectives, noun, optional of-phrase."""
        plural = self.rng.random() < 0.3 if plural is None else plural
        n = self.noun(plural)
        r = self.rng.random()
        if r < 0.35:
            n = self.c(ADJECTIVES) + " " + n
        elif r < 0.45:
            n = self.c(ADJECTIVES) + ", " + self.c(ADJECTIVES) + " " + n
        if self.rng.random() < 0.1:
            n += " of " + self.c(["the", "my", "our", "a"]) + " " + self.noun(False)
        if not det:
            return n
        if plural:
            d = self.c(["the", "some", "those", "these", "many", "my", "our", "their", "a few", "several", "all the",
                        str(self.rng.randint(2, 40))])
            return d + " " + n
        d = self.c(["the", "the", "a", "this", "that", "my", "your", "his", "her", "our", "every", "one",
                    self.c(NAMES) + "'s"])
        return _a(n) if d == "a" else d + " " + n

    def subj(self) -> tuple[str, bool]:
        r = self.rng.random()
        if r < 0.25:
            p = self.c(SUBJ_PRONOUNS)
            return p, p in ("I", "you", "we", "they")
        if r < 0.45:
            return self.c(NAMES), False
        plural = self.rng.random() < 0.3
        return self.np(plural), plural

    def obj(self) -> str:
        r = self.rng.random()
        if r < 0.12:
            return self.c(OBJ_PRONOUNS)
        if r < 0.2:
            return self.c(NAMES)
        return self.np()

    def vp(self, tense: str, plural: bool) -> str:
        base, third, past, part, ing = self.c(self.verbs)
        if tense == "past":
            v = past
        elif tense == "present":
            v = base if plural else third
        elif tense == "perfect":
            v = ("have " if plural else "has ") + part
        elif tense == "progressive":
            v = ("were " if plural else "was ") + ing
        elif tense == "future":
            v = "will " + base
        else:
            v = base
        out = v + " " + self.obj()
        r = self.rng.random()
        if r < 0.3:
            out += " " + self.c(PLACE_PHRASES)
        elif r < 0.45:
            out += " " + self.c(PREPOSITIONS) + " " + self.np()
        if self.rng.random() < 0.25:
            out += " " + self.c(TIME_PHRASES)
        if self.rng.random() < 0.2:
            out += " " + self.c(ADVERBS)
        return out

    def clause(self) -> str:
        s, plural = self.subj()
        tense = self.c(["past", "past", "present", "perfect", "progressive", "future"])
        if s == "I" and tense == "progressive":
            tense = "past"
        return f"{s} {self.vp(tense, plural)}"

    def number_phrase(self) -> str:
        r = self.rng.random()
        if r < 0.15:
            return f"at {self.rng.randint(1, 12)}:{self.c(['00', '05', '10', '15', '20', '30', '40', '45', '50', '55'])}"
        if r < 0.3:
            return f"in {self.rng.randint(1100, 2099)}"
        if r < 0.45:
            return f"{self.rng.randint(2, 999)} {self.c(UNITS)}"
        if r < 0.55:
            n = self.rng.randint(1, 60)
            suf = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
            return f"the {n}{suf} {self.c(['floor', 'time', 'day', 'page', 'chapter', 'row', 'birthday', 'visitor'])}"
        if r < 0.65:
            return f"${self.rng.randint(1, 500)}"
        if r < 0.73:
            return f"{self.rng.randint(1, 100)}%"
        if r < 0.8:
            return f"{self.rng.randint(0, 99)}.{self.rng.randint(1, 99)} {self.c(UNITS)}"
        if r < 0.88:
            return f"{self.rng.randint(1, 99)},{self.rng.randint(0, 999):03d} {self.c(['people', 'visitors', 'books', 'trees', 'letters', 'birds'])}"
        return f"{self.c(['room', 'bus', 'platform', 'gate', 'page', 'number', 'flight'])} {self.rng.randint(1, 999)}"

    # --- sentence templates
    def t_statement(self) -> str:
        c = self.clause()
        if self.rng.random() < 0.25:
            c += " " + self.number_phrase()
        return c + "."

    def t_compound(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            return f"{self.clause()}, {self.c(CONJ)} {self.clause()}."
        if r < 0.6:
            return f"{self.clause()}; {self.clause()}."
        if r < 0.85:
            return f"{self.c(SUBORD).capitalize()} {self.clause()}, {self.clause()}."
        return f"{self.clause()} {self.c(SUBORD)} {self.clause()}."

    def t_question(self) -> str:
        r = self.rng.random()
        s, _plural = self.subj()
        base = self.c(self.verbs)[0]
        if r < 0.4:
            return f"{self.c(AUX_Q)} {s} {base} {self.obj()}{' ' + self.c(PLACE_PHRASES) if self.rng.random() < .4 else ''}?"
        if r < 0.7:
            aux = self.c(["did", "will", "can", "should", "could"])
            return f"{self.c(WH[:4])} {aux} {s} {base} {self.obj()}?"
        if r < 0.85:
            return f"{self.c(['Is', 'Was'])} the {self.noun(False)} {self.c(ADJECTIVES)}, or is it {self.c(ADJECTIVES)}?"
        return f"{self.c(['Where is', 'Who has', 'Which is', 'What happened to'])} {self.np(False)}?"

    def t_exclaim(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return f"What {_a(self.c(ADJECTIVES))} {self.noun(False)}!"
        if r < 0.55:
            return f"{self.c(INTERJECTIONS)}, {self.clause()}!"
        if r < 0.8:
            base = self.c(self.verbs)[0]
            return f"{base.capitalize()} {self.obj()} {self.c(['now', 'quickly', 'at once', 'right away', 'please', 'again'])}!"
        return f"How {self.c(ADJECTIVES)} {self.c(['the', 'your', 'this'])} {self.noun(False)} {self.c(['is', 'was', 'looks', 'seems'])}!"

    def t_contraction(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            c = self.c(CONTRACTIONS)
            ing = self.c(self.verbs)[4]
            part = self.c(self.verbs)[3]
            base = self.c(self.verbs)[0]
            if c.endswith(("'m", "'re", "'s")) and c not in ("that's", "there's", "who's", "let's"):
                rest = f"{ing} {self.obj()}"
            elif c.endswith("'ve"):
                rest = f"{part} {self.obj()}"
            elif c == "let's":
                rest = f"{base} {self.obj()}"
            elif c in ("that's", "there's", "who's"):
                rest = f"{self.c(['not', 'just', 'always', 'never', 'really'])} {self.np(False)}"
            else:
                rest = f"{base} {self.obj()}"
            return f"{c} {rest} {self.c(PLACE_PHRASES + TIME_PHRASES)}."
        if r < 0.7:
            s, _plural = self.subj()
            neg = self.c(NEGATIONS)
            base, _third, _past, part, ing = self.c(self.verbs)
            v = ing if neg in ("isn't", "aren't", "wasn't") else part if neg == "haven't" else base
            return f"{s} {neg} {v} {self.obj()}."
        return f"{self.c(NAMES)}'s {self.noun(False)} {self.c(['is', 'was', 'seems', 'looked'])} {self.c(ADJECTIVES)}."

    def t_quote(self) -> str:
        q = self.clause()
        name = self.c([*NAMES, "the " + self.noun(False), self.c(SUBJ_PRONOUNS[1:6])])
        r = self.rng.random()
        if r < 0.5:
            return f'"{q}," {name} {self.c(SAY)}.'
        if r < 0.8:
            return f'{name} {self.c(SAY)}, "{q}!"'
        return f'"{self.c(INTERJECTIONS)}," {name} {self.c(SAY)}; "{self.clause()}."'

    def t_list(self) -> str:
        s, _ = self.subj()
        items = [self.np(det=self.rng.random() < 0.5) if self.rng.random() < 0.6 else
                 f"{self.rng.randint(2, 30)} {_plural(self.c(self.nouns))}" for _ in range(self.rng.randint(3, 5))]
        v = self.c(self.verbs)[2]
        lst = ", ".join(items[:-1]) + self.c([" and ", ", and ", " or "]) + items[-1]
        if self.rng.random() < 0.3:
            return f"{s} {v} {self.c(['these', 'the following', 'several things'])}: {lst}."
        return f"{s} {v} {lst}."

    def t_numbers(self) -> str:
        r = self.rng.random()
        if r < 0.35:
            return f"{self.number_phrase().capitalize()}, {self.clause()}."
        if r < 0.7:
            return f"{self.clause()} {self.number_phrase()}."
        a, b = self.number_phrase(), self.number_phrase()
        return f"Is it {a} or {b}?"

    def t_dash(self) -> str:
        return f"{self.clause()} - {self.c(['or so', 'at least', 'believe it or not', 'as usual', 'not really'])} - {self.c(CONJ)} {self.clause()}."

    def t_short(self) -> str:
        return self.c(SHORT) if self.rng.random() < 0.6 else f"{self.c(INTERJECTIONS)}, {self.c(SHORT).lower()}"

    def t_frequent(self) -> str:
        n = self.rng.randint(3, 14)
        words = self.rng.choices(self.lm_words, cum_weights=self.lm_cum, k=n)
        out = []
        for i, w in enumerate(words):
            out.append(w)
            if 0 < i < n - 1 and self.rng.random() < 0.08:
                out[-1] += self.c([",", ",", ";", ":"])
        end = self.c([".", ".", ".", "?", "!"])
        return " ".join(out) + end

    TEMPLATES = (("t_statement", 22), ("t_compound", 14), ("t_question", 12), ("t_exclaim", 7),
                 ("t_contraction", 10), ("t_quote", 6), ("t_list", 6), ("t_numbers", 10), ("t_dash", 3),
                 ("t_short", 4))

    def one(self) -> str:
        if self.frequent_fraction and self.rng.random() < self.frequent_fraction:
            raw = self.t_frequent()
        else:
            names, weights = zip(*self.TEMPLATES, strict=True)
            raw = getattr(self, self.rng.choices(names, weights=weights)[0])()
        raw = raw[0].upper() + raw[1:]
        return raw

    def sentences(self, n: int, *, max_chars: int = 200) -> list[str]:
        from lane.data.text import out_of_vocabulary

        out: list[str] = []
        seen: set[str] = set()
        while len(out) < n:
            raw = self.one()
            text = self.norm(raw)
            if len(text) > max_chars or out_of_vocabulary(text) or text in seen:
                continue
            key = self._key(text)
            w = key.split()
            if key in self.forbidden or any(tuple(w[i:i + 5]) in self.forbidden_5grams for i in range(len(w) - 4)):
                self.rejected_forbidden += 1
                continue
            seen.add(text)
            out.append(text)
        return out


def _cumsum(xs: Iterable[float]) -> Iterable[float]:
    t = 0.0
    for x in xs:
        t += x
        yield t
