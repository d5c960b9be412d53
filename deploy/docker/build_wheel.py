"""Build Smart Trader's wheel with its hot path compiled by mypyc (run inside the image's builder stage).

The modules are the Makefile's ``MYPYC_MODULES`` (what ``make compiled`` compiles), read from the Makefile so the two
never drift. Steps: the pure wheel (hatchling, as ``pip wheel`` builds it), mypyc on a copy of ``src/smart_trader``
(type information of the dependencies from the runtime venv, ``--python-executable``), then the same wheel with the
compiled extension modules added, re-tagged for this interpreter and platform (``cp311-cp311-linux_x86_64``) and
its ``RECORD`` rewritten, so ``pip install`` lists every ``.so`` it installs.

Usage: python build_wheel.py SOURCE_DIR OUT_DIR --python RUNTIME_PYTHON [--mypyc MYPYC]
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path


def mypyc_modules(makefile: Path) -> list[str]:
    """``MYPYC_MODULES`` of the Makefile (backslash-continued lines joined), as paths under ``smart_trader/``."""
    text = makefile.read_text().replace("\\\n", " ")
    m = re.search(r"^MYPYC_MODULES\s*:?=\s*(.+)$", text, re.M)
    if m is None:
        raise SystemExit(f"{makefile}: no MYPYC_MODULES")
    return m.group(1).split()


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _tag() -> str:
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    return f"{py}-{py}-{sysconfig.get_platform().replace('-', '_').replace('.', '_')}"


def compile_modules(source: Path, work: Path, modules: list[str], python: str, mypyc: str) -> dict[str, bytes]:
    """Run mypyc on a copy of the package; returns the built extension files by their path in the wheel.

    Raises:
        SystemExit: mypyc failed, or a listed module has no extension module afterwards.
    """
    tree = work / "compiled"
    shutil.copytree(
        source / "src" / "smart_trader", tree / "smart_trader", ignore=shutil.ignore_patterns("__pycache__")
    )
    args = [mypyc, "--ignore-missing-imports", "--python-executable", python, *(f"smart_trader/{m}" for m in modules)]
    run = subprocess.run(args, cwd=tree, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"mypyc failed ({run.returncode}):\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    built: dict[str, bytes] = {}
    for m in modules:
        ext = tree / "smart_trader" / (m.removesuffix(".py") + suffix)
        if not ext.is_file():
            raise SystemExit(f"mypyc built no extension for smart_trader/{m} ({ext.name})")
        built[ext.relative_to(tree).as_posix()] = ext.read_bytes()
    # the modules share one library mypyc puts at the top level (<hash>__mypyc<suffix>): it goes beside the package
    for shared in tree.glob(f"*__mypyc{suffix}"):
        built[shared.name] = shared.read_bytes()
    if len(built) == len(modules):
        raise SystemExit("mypyc left no shared library (*__mypyc*.so)")
    return built


def add_to_wheel(wheel: Path, extra: dict[str, bytes], out_dir: Path) -> Path:
    """A copy of ``wheel`` with ``extra`` files added, tagged for this interpreter and platform, RECORD rewritten."""
    name, version = wheel.name.split("-")[:2]
    tag = _tag()
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as zin:
        for info in zin.infolist():
            files[info.filename] = zin.read(info)
    dist_info = f"{name}-{version}.dist-info"
    wheel_meta = files[f"{dist_info}/WHEEL"].decode()
    wheel_meta = re.sub(r"^Root-Is-Purelib: .*$", "Root-Is-Purelib: false", wheel_meta, flags=re.M)
    wheel_meta = re.sub(r"^Tag: .*\n?", "", wheel_meta, flags=re.M).rstrip("\n") + f"\nTag: {tag}\n"
    files[f"{dist_info}/WHEEL"] = wheel_meta.encode()
    files.update(extra)
    record_name = f"{dist_info}/RECORD"
    files.pop(record_name, None)
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in files.items():
        writer.writerow([path, _digest(data), len(data)])
    writer.writerow([record_name, "", ""])
    files[record_name] = record.getvalue().encode()
    out = out_dir / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if path.endswith(".so") else 0o644) << 16
            zout.writestr(info, data)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the repository (pyproject.toml, Makefile, src/)")
    parser.add_argument("out", type=Path, help="where the compiled wheel goes")
    parser.add_argument("--python", required=True, help="the runtime venv's python (dependencies for mypy)")
    parser.add_argument("--mypyc", default="mypyc", help="the mypyc command")
    args = parser.parse_args()
    modules = mypyc_modules(args.source / "Makefile")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pure = work / "pure"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-cache-dir",
                "-q",
                "-w",
                str(pure),
                str(args.source),
            ],
            check=True,
        )
        (wheel,) = pure.glob("*.whl")
        built = compile_modules(args.source, work, modules, args.python, args.mypyc)
        out = add_to_wheel(wheel, built, args.out)
    print(f"{out.name}: {len(modules)} modules compiled by mypyc")


if __name__ == "__main__":
    main()
