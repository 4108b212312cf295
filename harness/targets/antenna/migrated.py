"""The key of Antenna's migrated-and-seeded database snapshot (saved and reused as harness/infra/snapshot.py does).

`migrate` takes ~17 s for Antenna's ~200 migrations. The key covers what can change the schema or the seed:
the virtualenv (its name is the hash of the requirements and Python version), the checkout's migrations, the
overlay (settings, seed, bootstrap; with the fixes on, their app), the fixes' own migrations, the fixes
switches and the seed's spec. Timing knobs are applied when the processes start and are not part of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from harness.infra.base import PROJECT_ROOT


def schema_key(code: Path, venv: Path, overlay: Path, settings: Mapping[str, str], seed_spec: dict) -> str:
    digest = hashlib.sha256(venv.name.encode())
    for root, pattern in ((code, "ami/**/migrations/*.py"), (overlay, "**/*.py"),
                          (PROJECT_ROOT / "fixes", "**/migrations/*.py")):
        for path in sorted(root.glob(pattern)):
            digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    switches = {name: value for name, value in settings.items() if name.startswith("CHAOS_FIX")}
    digest.update(json.dumps([switches, seed_spec], sort_keys=True).encode())
    return f"antenna-{digest.hexdigest()[:16]}"
