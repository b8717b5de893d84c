"""voice_bundle/1: the directory a trained voice ships as, `bundles/<voice_profile_id>/voice_bundle/`.

    build    export the trained models into a checked bundle (NeMo and torch inside functions)
    manifest the typed manifest.json: load, check against its schema, save
    check    validate a bundle's manifest, files and hashes; record validation results
    voice    synthesize from a bundle with onnxruntime only (no torch, no NeMo)
"""

from __future__ import annotations

from .build import build_bundle
from .check import BundleCheck, require_valid, validate_voice_bundle, write_validation
from .manifest import BUNDLE_VERSION, BundleManifest

__all__ = ["BUNDLE_VERSION", "BundleCheck", "BundleManifest", "build_bundle", "require_valid", "validate_voice_bundle", "write_validation"]
