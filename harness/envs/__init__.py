"""Engine environments: pins, registry, offline wheel bundles, creation and checks.

- ``pins``: the known-good pins and exclusions per engine (``scenarios/engine-pins.yaml``).
- ``registry``: where each engine's environment lives (``lookup(engine) -> EnvRecord | None``).
- ``target``: the target interpreter/platform (marker environment, wheel tags).
- ``hostpkgs``: what a host already has (``pip freeze`` / ``pip list --format=json``).
- ``resolve``: breadth-first wheel-closure resolution over Requires-Dist, via ``pip download --no-deps``.
- ``bundle``: offline bundles (manifest, split parts, install.sh) and their verification.
- ``install``: installing a bundle into a target directory or a venv.
- ``create``: ``harness env create`` (a virtual environment per engine).
- ``check``: ``harness env check`` (versions and imports inside an environment vs the pins).
"""
