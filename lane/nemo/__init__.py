"""NeMo FastPitch + HiFi-GAN for the lane. Imports form a DAG, and nothing heavy loads at import:

    runtime    lazy NeMo import (nemo_runtime_unavailable), quiet logging, memory stats
    trainer    Lightning: the lane's progress/checkpoint callback, Trainer factory, loss log  (runtime)
    fastpitch  config, build from scratch or a base .nemo, fit                             (runtime, trainer)
    hifigan    ground-truth-aligned mels, fine-tune or train the vocoder            (runtime, trainer, fastpitch)
    train      train_voice: the train stage's model half                     (runtime, fastpitch, hifigan)
    tokenizer  the model's tokenizer described as JSON for the NeMo-free runtime
    synth      reference synthesis through NeMo (validate compares ONNX against it)  (runtime, fastpitch)
    tinydata   a tiny espeak-ng dataset in the data stage's layout, for tests and benches
"""
