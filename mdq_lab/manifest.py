"""What ``labsetup`` changed under an environment's prefix, and how to put it back byte for byte.

The manifest (``share/mdq-teach/labsetup-manifest.json`` under the prefix) holds, for every file
or folder the set-up wrote, its content before the first set-up (or that it did not exist), a
digest of what the set-up wrote, and the folders the set-up created. It is written before any
other file, so a set-up stopped half-way can still be undone. A later set-up keeps the first
originals: ``--uninstall`` always goes back to the environment as it was before ``labsetup``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path

MANIFEST = Path("share", "mdq-teach", "labsetup-manifest.json")

# A state: None (absent), a file's bytes, or a folder's {relative path: bytes}.


def read_state(path: Path):
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p.read_bytes()
                for p in sorted(path.rglob("*")) if p.is_file()}
    return path.read_bytes() if path.is_file() else None


def write_state(path: Path, state) -> None:
    if state is None:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    elif isinstance(state, dict):
        from mdq_lab.cite import write_folder

        write_folder(path, state)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".mdq-tmp")
        tmp.write_bytes(state)
        if path.exists():  # keep the file's permissions
            shutil.copymode(path, tmp)
        tmp.replace(path)


def digest(state) -> str | None:
    if state is None:
        return None
    if isinstance(state, dict):
        state = json.dumps({k: hashlib.sha256(v).hexdigest() for k, v in state.items()},
                           sort_keys=True).encode()
    return hashlib.sha256(state).hexdigest()


def _encode(state):
    if state is None:
        return None
    if isinstance(state, dict):
        return {k: base64.b64encode(v).decode() for k, v in state.items()}
    return base64.b64encode(state).decode()


def _decode(data):
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: base64.b64decode(v) for k, v in data.items()}
    return base64.b64decode(data)


def missing_dirs(prefix: Path, rel: str) -> list[str]:
    """The folders above ``prefix/rel`` that do not exist yet, outermost first."""
    out, parent = [], Path(rel).parent
    while parent != Path(".") and not (prefix / parent).exists():
        out.append(parent.as_posix())
        parent = parent.parent
    return out[::-1]


class Manifest:
    def __init__(self, prefix: str | Path):
        self.prefix = Path(prefix)
        self.path = self.prefix / MANIFEST
        data = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.entries: dict[str, dict] = data.get("entries", {})
        self.dirs: list[str] = data.get("dirs", [])

    def exists(self) -> bool:
        return self.path.is_file()

    def record(self, rel: str) -> None:
        """Keep what ``rel`` holds now, unless an earlier set-up already kept its original."""
        for d in missing_dirs(self.prefix, rel):
            if d not in self.dirs:
                self.dirs.append(d)
        if rel not in self.entries:
            original = read_state(self.prefix / rel)
            self.entries[rel] = {"original": _encode(original), "written": digest(original)}

    def written(self, rel: str) -> None:
        self.entries[rel]["written"] = digest(read_state(self.prefix / rel))

    def save(self) -> None:
        for d in missing_dirs(self.prefix, MANIFEST.as_posix()):
            if d not in self.dirs:
                self.dirs.append(d)
        data = {"about": "python -m mdq_lab.install --uninstall restores these",
                "entries": self.entries, "dirs": self.dirs}
        write_state(self.path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())

    def changed_since(self) -> list[str]:
        """Entries whose content is no longer what the set-up wrote (edited since)."""
        return [rel for rel, e in self.entries.items()
                if digest(read_state(self.prefix / rel)) != e["written"]]

    def restore(self, force: bool = False) -> list[str]:
        """Put every entry back as it was before the set-up and remove the manifest and the
        folders the set-up created; an entry edited since the set-up is left, and kept in the
        manifest, unless ``force``. Returns the entries left."""
        left = [] if force else self.changed_since()
        for rel, e in list(self.entries.items()):
            if rel not in left:
                write_state(self.prefix / rel, _decode(e["original"]))
                del self.entries[rel]
        if left:
            self.save()
            return left
        write_state(self.path, None)
        for d in sorted(self.dirs, key=lambda d: d.count("/"), reverse=True):
            try:
                os.rmdir(self.prefix / d)
            except OSError:  # not empty: something else lives there now
                pass
        return []
