"""Spoken consent: the speaker's own voice, reading a one-time statement, is the consent record.

    lane consent challenge --voice-profile-id V --speaker NAME --use commercial   # challenge.issue
    lane consent record --challenge ID AUDIO --audio RECORDINGS                   # record.record

Modules, in the order a consent goes through them:

- words: the statement (a fixed sentence: who, which voice, what use) and the one-time word pool;
- challenge: issuing a challenge as a signed ledger entry, finding it again, whether it was used;
- fresh: whether the consent audio was cut from a recording it should cover;
- speech: whether the statement was said (pocketsphinx, told nothing of the statement);
- voice: whether it is the recordings' voice (GE2E similarity, AS-norm against a shipped cohort);
- policy: the thresholds, measured by bench/bench_consent.py;
- record: the procedure, the signed `voice_consent/2` record and its ledger entry;
- gate: what the verify stage checks at every run (coverage, and the voice compared again);
- summary, commands: the report's consent row, the model card's lines, the CLI's output.

This package sits above lane.core and lane.metrics; lane.core never imports it.
"""
