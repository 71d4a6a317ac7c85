"""Install the visdom web page's JavaScript, CSS and font files from the npm registry.

The visdom wheel ships without its third-party front-end files. On first start the server
downloads them from several CDNs and, on a machine without internet access, dies a few
seconds later (its MathJax download has no error handling); without the files the page
stays blank. Every one of those files is also published as an npm package, so this script
fetches the packages with ``npm pack`` (npm registry only) and copies the files to the names
the server expects inside the installed visdom package. Afterwards
``python -m visdom.server -port 8097 -bind_local`` starts without any download.

    .venv/bin/python scripts/install_visdom_assets.py          # install (idempotent)
    .venv/bin/python scripts/install_visdom_assets.py --check  # exit 0 if installed, 1 if not

Run it with the interpreter of the environment whose visdom should serve the page; rerun
it after recreating that environment.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# (npm package@version, path inside the package, path under visdom/static).
# The versions and target names are the ones visdom 0.2.4's server/build.py downloads.
_BOOTSTRAP_FONT = "dist/fonts/glyphicons-halflings-regular"
ASSETS: list[tuple[str, str, str]] = [
    ("jquery@3.1.1", "dist/jquery.min.js", "js/jquery.min.js"),
    ("bootstrap@3.3.7", "dist/js/bootstrap.min.js", "js/bootstrap.min.js"),
    ("bootstrap@3.3.7", "dist/css/bootstrap.min.css", "css/bootstrap.min.css"),
    *[("bootstrap@3.3.7", f"{_BOOTSTRAP_FONT}.{ext}", f"fonts/glyphicons-halflings-regular.{ext}")
      for ext in ("eot", "woff2", "woff", "ttf", "svg")],
    # The server checks for the svg under its URL-with-fragment name, too.
    ("bootstrap@3.3.7", f"{_BOOTSTRAP_FONT}.svg", "fonts/glyphicons-halflings-regular.svg#glyphicons_halflingsregular"),
    ("react@16.2.0", "umd/react.production.min.js", "js/react-react.min.js"),
    ("react-dom@16.2.0", "umd/react-dom.production.min.js", "js/react-dom.min.js"),
    ("react-modal@3.1.10", "dist/react-modal.min.js", "js/react-modal.min.js"),
    ("plotly.js-dist-min@2.11.1", "plotly.min.js", "js/plotly-plotly.min.js"),
    ("sjcl@1.0.7", "sjcl.js", "js/sjcl.js"),
    ("layout-bin-packer@1.4.0", "dist/layout-bin-packer.js", "js/layout_bin_packer.js"),
    ("layout-bin-packer@1.4.0", "dist/layout-bin-packer.js.map", "js/layout-bin-packer.js.map"),
    ("d3@3.5.17", "d3.min.js", "js/d3.v3.min.js"),
    ("d3-selection-multi@1.0.1", "build/d3-selection-multi.js", "js/d3-selection-multi.v1.js"),
    ("save-svg-as-png@1.4.17", "lib/saveSvgAsPng.js", "js/saveSvgAsPng.js"),
    ("react-resizable@1.4.6", "css/styles.css", "css/react-resizable-styles.css"),
    ("react-grid-layout@0.16.3", "css/styles.css", "css/react-grid-layout-styles.css"),
    ("classnames@2.2.5", "index.js", "fonts/classnames"),
    # MathJax without its large HTML-CSS web fonts (visdom renders maths as SVG).
    *[("mathjax@2.7.5", part, f"js/mathjax/2.7.5/{part}")
      for part in ("MathJax.js", "config", "extensions", "jax", "localization")],
]
BUILT_MARKER = "version.built"  # visdom's own "assets are complete" marker


def visdom_static_dir() -> Path:
    try:
        import visdom
    except ImportError:
        sys.exit(f"error: visdom is not installed for {sys.executable}; run "
                 f"'{sys.executable} -m pip install -r requirements.txt' first")
    return Path(visdom.__file__).resolve().parent / "static"


def visdom_version() -> str:
    import visdom

    return visdom.__version__


def missing_assets(static_dir: Path) -> list[str]:
    """Target paths (relative to ``static_dir``) that are absent, plus the build marker if stale."""
    missing = [target for _, _, target in ASSETS if not (static_dir / target).exists()]
    marker = static_dir / BUILT_MARKER
    if not marker.is_file() or marker.read_text().strip() != visdom_version():
        missing.append(BUILT_MARKER)
    return missing


def _npm_pack(specs: list[str], workdir: Path) -> dict[str, Path]:
    """Download each package tarball into ``workdir``; returns ``{spec: unpacked package folder}``."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("error: npm is not installed, so the visdom page's files cannot be fetched. Install Node.js "
                 "with npm (Debian/Ubuntu: 'apt-get install npm') and rerun this script. Training does not need "
                 "it; only the visdom web page does")
    result = subprocess.run([npm, "pack", "--json", "--silent", "--pack-destination", str(workdir), *specs],
                            cwd=workdir, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: 'npm pack' failed (is the npm registry reachable?):\n{result.stderr.strip()[-2000:]}")
    packed = json.loads(result.stdout)
    folders = {}
    for spec, entry in zip(specs, packed, strict=True):
        folder = workdir / spec.replace("@", "-")
        with tarfile.open(workdir / entry["filename"]) as archive:
            archive.extractall(folder, filter="data")
        folders[spec] = folder / "package"  # npm tarballs keep everything under package/
    return folders


def _install(source: Path, target: Path) -> None:
    """Copy a file or folder so that ``target`` appears complete or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    if source.is_dir():
        shutil.copytree(source, partial)
        shutil.rmtree(target, ignore_errors=True)
    else:
        shutil.copyfile(source, partial)
    os.replace(partial, target)


def install(static_dir: Path) -> None:
    specs = list(dict.fromkeys(spec for spec, _, _ in ASSETS))
    with tempfile.TemporaryDirectory(prefix="visdom-assets-") as tmp:
        packages = _npm_pack(specs, Path(tmp))
        for spec, member, target in ASSETS:
            source = packages[spec] / member
            if not source.exists():
                sys.exit(f"error: {spec} has no {member}; the npm package changed, update ASSETS in {__file__}")
            _install(source, static_dir / target)
    # Written last: visdom treats the assets as complete only when this marker holds its version.
    (static_dir / BUILT_MARKER).write_text(visdom_version())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report whether the files are installed")
    args = parser.parse_args()
    static_dir = visdom_static_dir()
    missing = missing_assets(static_dir)
    if args.check:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        print(f"visdom assets in {static_dir}: " + (f"missing {shown}" if missing else "complete"))
        sys.exit(1 if missing else 0)
    if not missing:
        print(f"visdom assets already installed in {static_dir}")
        return
    install(static_dir)
    still_missing = missing_assets(static_dir)
    if still_missing:
        sys.exit(f"error: still missing after install: {', '.join(still_missing)}")
    print(f"installed the visdom page's files from npm into {static_dir}")


if __name__ == "__main__":
    main()
