"""Who wrote a file: the AI (a transcript says so, within seconds) or the person (a diff)."""

from __future__ import annotations

from pathlib import Path

from agent.pipeline.heartbeat import Heartbeat
from agent.sources.ai.attribution import WriteClassifier

T0 = 1_790_000_000.0


def write(path: Path, text: str, at: float, classifier: WriteClassifier) -> Heartbeat:
    path.write_text(text)
    [hb] = classifier.attribute([Heartbeat(entity=str(path), time=at, is_write=True)])
    return hb


def test_a_write_the_transcript_recorded_is_ai_activity(tmp_path: Path) -> None:
    classifier = WriteClassifier(window=10)
    path = tmp_path / "app.py"
    classifier.note_ai_write(str(path), T0)
    hb = write(path, "x = 1\n", T0 + 3, classifier)
    assert hb.category == "ai coding"
    assert (
        hb.human_line_changes is None and hb.ai_line_changes is None
    )  # counted once, by the transcript
    # Long after the AI's edit, the same file saved again is the person's.
    hb = write(path, "x = 1\ny = 2\nz = 3\n", T0 + 60, classifier)
    assert hb.category == "coding"
    assert (hb.line_additions, hb.line_deletions, hb.human_line_changes) == (2, 0, 2)


def test_a_persons_saves_carry_the_diffed_line_changes(tmp_path: Path) -> None:
    classifier = WriteClassifier()
    path = tmp_path / "notes.md"
    first = write(path, "".join(f"line {n}\n" for n in range(200)), T0, classifier)
    assert first.human_line_changes is None  # nothing to diff against yet
    lines = [f"line {n}\n" for n in range(200)]
    lines[50] = "changed\n"
    del lines[120:125]
    hb = write(path, "".join(lines), T0 + 5, classifier)
    assert (hb.line_additions, hb.line_deletions, hb.human_line_changes) == (1, 6, -5)
    again = write(path, "".join(lines), T0 + 9, classifier)
    assert again.human_line_changes == 0


def test_binary_and_big_files_get_no_diff(tmp_path: Path) -> None:
    classifier = WriteClassifier(max_bytes=1000)
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\x00\x00")
    [hb] = classifier.attribute([Heartbeat(entity=str(image), time=T0, is_write=True)])
    image.write_bytes(b"\x89PNG\x00\x01\n\n")
    [hb] = classifier.attribute([Heartbeat(entity=str(image), time=T0 + 1, is_write=True)])
    assert hb.human_line_changes is None
    big = tmp_path / "big.txt"
    write(big, "a\n" * 600, T0, classifier)
    assert write(big, "b\n" * 600, T0 + 1, classifier).human_line_changes is None


def test_memory_budget_drops_the_least_recently_written(tmp_path: Path) -> None:
    classifier = WriteClassifier(budget=100)
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    write(old, "o\n" * 40, T0, classifier)
    write(new, "n\n" * 40, T0, classifier)  # 160 bytes kept > 100: old.txt is dropped
    assert write(old, "o\n" * 41, T0 + 1, classifier).human_line_changes is None
    assert classifier._kept == 82  # only old.txt, just written, is kept


def test_a_long_rewrite_is_counted_without_a_diff(tmp_path: Path) -> None:
    classifier = WriteClassifier()
    path = tmp_path / "generated.py"
    write(path, "".join(f"a{n} = {n}\n" for n in range(5000)), T0, classifier)
    hb = write(path, "".join(f"b{n} = {n}\n" for n in range(4000)), T0 + 1, classifier)
    assert (hb.line_additions, hb.line_deletions, hb.human_line_changes) == (4000, 5000, -1000)
