"""Every relative link and image in README.md and docs/*.md resolves: the file exists inside the
repository and a ``#fragment`` names a heading of the target page (GitHub's anchor rule)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))

# [text](target) and ![alt](target); the target ends at whitespace or ')'.
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")


def strip_code(text: str) -> str:
    """Drop fenced code blocks and inline code spans (links inside them are not links)."""
    out, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            in_fence = not in_fence
            out.append("")
            continue
        out.append("" if in_fence else re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, markup and punctuation dropped, spaces -> '-'."""
    h = heading.strip().replace("`", "")
    h = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", h)
    h = h.lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Anchors of every heading of ``page`` (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for line in _headings(page):
        a = anchor(line)
        n = seen.get(a, 0)
        out.add(a if n == 0 else f"{a}-{n}")
        seen[a] = n + 1
    return out


def _headings(page: Path) -> list[str]:
    heads, in_fence = [], False
    for line in page.read_text().splitlines():
        if FENCE.match(line.lstrip()):
            in_fence = not in_fence
            continue
        m = None if in_fence else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            heads.append(m.group(1))
    return heads


def links(page: Path) -> list[str]:
    return [m.group(1) for m in LINK.finditer(strip_code(page.read_text()))]


def broken_links(page: Path) -> list[str]:
    bad = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        path, _, frag = target.partition("#")
        dest = page if not path else (page.parent / path).resolve()
        if path:
            try:
                dest.relative_to(ROOT)
            except ValueError:
                bad.append(f"{target}: outside the repository")
                continue
            if not dest.exists():
                bad.append(f"{target}: no such file")
                continue
        if frag and dest.suffix == ".md" and frag not in anchors(dest):
            bad.append(f"{target}: no heading with anchor #{frag} in {dest.relative_to(ROOT)}")
    return bad


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page):
    assert broken_links(page) == []


def test_checker_finds_broken_links(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Two words `code`\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](docs/a.md) [ok2](docs/a.md#two-words-code) [self](#top)\n"
                    "![img](docs/missing.png) [bad](docs/a.md#nope) `[code](ignored.md)`\n"
                    "```\n[fenced](ignored.md)\n```\n[up](../outside.md) [web](https://example.org)\n# Top\n")
    assert broken_links(page) == [
        "docs/missing.png: no such file",
        "docs/a.md#nope: no heading with anchor #nope in docs/a.md",
        "../outside.md: outside the repository",
    ]


def test_anchor_rule():
    assert anchor("Where we stand") == "where-we-stand"
    assert anchor("The main job: `sbs demo`") == "the-main-job-sbs-demo"
    assert anchor("Fast kernel for the float32 update (`paper*` presets)") == \
        "fast-kernel-for-the-float32-update-paper-presets"
