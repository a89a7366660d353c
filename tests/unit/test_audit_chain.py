"""The audit file's hash chain: written by many processes at once, rotated, verified,
and every kind of tampering named at the first broken link."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from verifier.auditchain import GENESIS, chained_line, line_hash
from verifier.auditlog import AuditWriter, append_audit_line
from verifier.auditrotate import archives, rotate
from verifier.auditsink import SinkSender
from verifier.auditverify import compare, verify
from verifier.errors import AuditUnavailable


def record(n: int) -> dict[str, object]:
    return {"time": f"t{n}", "request_id": f"req-{n}", "decision": "allow", "reason": "ok"}


def write(path: Path, count: int, start: int = 0) -> AuditWriter:
    writer = AuditWriter(str(path))
    for n in range(start, start + count):
        writer.append(record(n))
    return writer


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def put_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "audit.log"


def test_each_line_carries_its_seq_and_the_hash_of_the_line_before(log):
    write(log, 3)
    lines = lines_of(log)
    parsed = [json.loads(line) for line in lines]
    assert [p["seq"] for p in parsed] == [1, 2, 3]
    assert parsed[0]["prev"] == GENESIS
    assert parsed[1]["prev"] == line_hash(lines[0])
    assert parsed[2]["prev"] == line_hash(lines[1])
    assert list(parsed[0])[-2:] == ["seq", "prev"]


def test_an_intact_file_verifies(log):
    write(log, 20)
    report = verify([log])
    assert report.intact, report
    assert report.lines == 20
    assert str(report).startswith("intact, 20 lines")


def test_one_character_edited_in_one_line_is_named(log):
    write(log, 10)
    lines = lines_of(log)
    lines[4] = lines[4].replace(b"req-4", b"req-X")
    put_lines(log, lines)
    report = verify([log])
    assert not report.intact
    assert (report.broken.file, report.broken.line) == (str(log), 5)
    assert report.broken.problem.startswith("edited")


def test_an_edit_that_breaks_the_json_is_named_at_that_line(log):
    write(log, 10)
    lines = lines_of(log)
    lines[6] = lines[6].replace(b'"seq"', b'"seX"')
    put_lines(log, lines)
    broken = verify([log]).broken
    assert broken is not None and broken.line == 7 and broken.problem.startswith("edited")


def test_a_deleted_line_is_named(log):
    write(log, 10)
    lines = lines_of(log)
    del lines[3]
    put_lines(log, lines)
    broken = verify([log]).broken
    assert broken is not None and broken.line == 4
    assert broken.problem.startswith("deleted: 1 line(s) (seq 4)")


def test_deleted_first_lines_are_named(log):
    write(log, 10)
    put_lines(log, lines_of(log)[2:])
    broken = verify([log]).broken
    assert broken is not None and broken.line == 1 and broken.problem.startswith("deleted")


def test_an_inserted_line_is_named_even_with_a_correct_link(log):
    write(log, 10)
    lines = lines_of(log)
    forged = json.loads(lines[5])
    forged["request_id"] = "forged"
    forged_line = (json.dumps(forged, separators=(",", ":")) + "\n").encode()
    lines.insert(6, forged_line)  # same seq and prev as line 6: a perfect copy of the link
    put_lines(log, lines)
    broken = verify([log]).broken
    assert broken is not None and broken.problem.startswith("inserted")
    assert broken.line == 7


def test_a_truncated_file_is_named(log):
    write(log, 10)
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - 20])
    broken = verify([log]).broken
    assert broken is not None and broken.line == 10 and broken.problem.startswith("truncated")


def test_a_writer_refuses_to_continue_a_torn_file_and_rotation_repairs_it(log):
    write(log, 3)
    log.write_bytes(log.read_bytes()[:-5])
    with pytest.raises(AuditUnavailable, match="incomplete line"):
        AuditWriter(str(log)).append(record(9))
    rotate(log, keep=5, now=time.time())
    AuditWriter(str(log)).append(record(9))
    assert verify([log]).intact  # the new file alone: starts at its anchor
    broken = verify([*archives(log), log]).broken
    assert broken is not None and broken.problem.startswith("truncated")


def test_the_chain_continues_across_a_rotation(log):
    write(log, 5)
    rotated = rotate(log, keep=5, now=time.time())
    write(log, 5, start=5)
    anchor = json.loads(lines_of(log)[0])
    assert anchor["event"] == "audit_rotated"
    assert anchor["previous_file"] == rotated.archive.name
    assert anchor["seq"] == 6
    assert anchor["prev"] == line_hash(lines_of(rotated.archive)[-1])
    report = verify([*archives(log), log])
    assert report.intact, report
    assert report.lines == 11 and report.files == 2


def test_a_line_cut_off_the_end_of_a_rotated_file_is_named(log):
    write(log, 5)
    rotated = rotate(log, keep=5, now=time.time())
    write(log, 2, start=5)
    put_lines(rotated.archive, lines_of(rotated.archive)[:-1])
    broken = verify([rotated.archive, log]).broken
    assert broken is not None and broken.file == str(log) and broken.line == 1
    assert broken.problem.startswith("deleted")


def test_rotation_keeps_only_the_newest_archives(log):
    for n in range(4):
        write(log, 1, start=n)
        rotate(log, keep=2, now=time.time() + n)
    kept = archives(log)
    assert len(kept) == 2
    report = verify([*kept, log])
    assert report.intact and "earlier files not checked" in report.starts_at


def _writer(path: str, count: int, tag: int) -> None:
    writer = AuditWriter(path)
    for n in range(count):
        writer.append({"writer": tag, "n": n, "pad": "x" * (n % 50)})


def _rotator(path: str, times: int) -> None:
    for n in range(times):
        time.sleep(0.02)
        rotate(Path(path), keep=100, now=time.time() + n)


@pytest.mark.parametrize("rotations", [0, 3])
def test_concurrent_writer_processes_keep_the_chain_intact(log, rotations):
    ctx = multiprocessing.get_context("fork")
    per_writer, writers = 1000, 4
    procs = [ctx.Process(target=_writer, args=(str(log), per_writer, t)) for t in range(writers)]
    if rotations:
        procs.append(ctx.Process(target=_rotator, args=(str(log), rotations)))
    started = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    files = [*archives(log), log]
    report = verify(files)
    print(
        f"{writers}x{per_writer} records, {rotations} rotations: "
        f"{time.perf_counter() - started:.2f}s; {report}"
    )
    assert report.intact, report
    assert len(files) == rotations + 1
    assert report.lines == writers * per_writer + rotations
    seen = [
        (obj["writer"], obj["n"])
        for f in files
        for obj in map(json.loads, lines_of(f))
        if "writer" in obj
    ]
    assert sorted(seen) == [(t, n) for t in range(writers) for n in range(per_writer)]


def _threaded_writer(path: str, threads: int, count: int, tag: int) -> None:
    writer = AuditWriter(path)  # one per process, its descriptor shared by the threads

    def run(t: int) -> None:
        for n in range(count):
            writer.append({"writer": tag * 100 + t, "n": n})

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)


def test_threads_sharing_one_writers_descriptor_keep_the_chain_intact(log):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_threaded_writer, args=(str(log), 4, 250, t)) for t in range(2)]
    procs.append(ctx.Process(target=_rotator, args=(str(log), 2)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    report = verify([*archives(log), log])
    assert report.intact, report
    assert report.lines == 2 * 4 * 250 + 2


def test_a_writer_opens_its_file_once_not_per_record(log, monkeypatch):
    opened: list[str] = []
    real_open = os.open

    def counting_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    writer = write(log, 50)
    assert opened.count(str(log)) == 1
    rotate(log, keep=5, now=time.time())
    writer.append(record(50))  # the path's inode changed: the new file is opened
    assert opened.count(str(log)) == 3  # the rotation's own open, then the writer's
    writer.close()
    assert verify([*archives(log), log]).intact


def _append_from_child(writer: AuditWriter, count: int) -> None:
    for n in range(count):
        writer.append({"child": n})


def test_a_forked_child_never_writes_through_its_parents_descriptor(log):
    """A descriptor inherited across fork shares the parent's flock: the child opens its own."""
    writer = write(log, 1)  # the parent's descriptor is open now
    child = multiprocessing.get_context("fork").Process(
        target=_append_from_child, args=(writer, 2000)
    )
    child.start()
    for n in range(2000):
        writer.append(record(n))
    child.join(60)
    assert child.exitcode == 0
    report = verify([log])
    assert report.intact, report
    assert report.lines == 4001


def test_the_sinks_copy_shows_an_edit_of_the_primary(log, tmp_path):
    sink_socket = str(tmp_path / "sink.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(sink_socket)
    writer = AuditWriter(str(log), SinkSender(sink_socket))
    for n in range(5):
        writer.append(record(n))
    copy = tmp_path / "sink.log"
    copy.write_bytes(b"".join(receiver.recv(65536) for _ in range(5)))
    assert copy.read_bytes() == log.read_bytes()  # the line is in both
    assert compare([log], [copy]) == (5, [])
    # The intruder rewrites the last line (no line follows it: the chain alone cannot see it).
    lines = lines_of(log)
    lines[-1] = lines[-1].replace(b"allow", b"deny!")
    put_lines(log, lines)
    assert verify([log]).intact
    _, differences = compare([log], [copy])
    assert [(d.line, d.seq) for d in differences] == [(5, 5)]
    assert "edited" in differences[0].problem
    put_lines(log, lines[:3])  # and cuts lines off the end
    _, differences = compare([log], [copy])
    assert [d.seq for d in differences] == [4, 5]
    assert all("missing" in d.problem for d in differences)


def test_a_sink_that_is_down_never_fails_a_line_and_is_counted(log, tmp_path):
    sender = SinkSender(str(tmp_path / "nobody.sock"))
    writer = AuditWriter(str(log), sender)
    writer.append(record(1))
    writer.append(record(2))
    assert verify([log]).lines == 2
    status = sender.status()
    assert (status["sent"], status["failed"]) == (0, 2)
    assert status["failing_since"] is not None
    assert sender.problem() is not None and "only in the primary file" in sender.problem()


def test_per_record_cost_before_and_after_the_chain(log, tmp_path):
    """Printed, never asserted (docs/testing.md): a plain O_APPEND write vs a chained
    one with the cached head (one writer) vs one that re-reads the tail every time."""
    count = 2000
    plain = tmp_path / "plain.log"
    line = (json.dumps(record(0)) + "\n").encode()
    started = time.perf_counter()
    for _ in range(count):
        fd = os.open(plain, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(fd, line)
        os.close(fd)
    before = (time.perf_counter() - started) / count * 1e6
    writer = AuditWriter(str(log))
    started = time.perf_counter()
    for n in range(count):
        writer.append(record(n))
    cached = (time.perf_counter() - started) / count * 1e6
    other = tmp_path / "other.log"
    started = time.perf_counter()
    for n in range(count):
        append_audit_line(str(other), record(n))  # a new writer each time: tail read
    uncached = (time.perf_counter() - started) / count * 1e6
    print(
        f"per record: plain {before:.1f} us, chained {cached:.1f} us "
        f"({cached / before:.2f}x), chained with tail read {uncached:.1f} us "
        f"({uncached / before:.2f}x); tail reads by the cached writer: {writer.tail_reads}"
    )
    assert writer.tail_reads == 0
    assert verify([log]).intact and verify([other]).intact


def test_a_sink_that_comes_back_clears_the_problem_at_the_next_health_probe(log, tmp_path):
    path = tmp_path / "sink.sock"
    sender = SinkSender(str(path))
    AuditWriter(str(log), sender).append(record(1))
    assert sender.problem() is not None
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    assert sender.problem() is None  # probed with an empty datagram, no line needed
    assert receiver.recv(10) == b""
    assert sender.status()["sent"] == 0  # a probe is no line
    assert sender.status()["failed"] == 2  # the line, and the first (failed) probe


def test_a_file_from_before_the_chain_archived_on_upgrade_is_not_walked(log):
    # `make up` on a stack from before the chain archives its file once; verify walked
    # that archive and called its first line "edited" forever after (found by upgrading).
    log.write_text('{"decision":"allow"}\n{"decision":"deny"}\n')
    rotate(log, keep=5, now=time.time())
    write(log, 3)
    report = verify([*archives(log), log])
    assert report.intact, report
    assert "before the chain" in str(report)


@pytest.mark.parametrize("rec", [{}, record(1), {"path": "/a\u00e9\n", "roles": ["r", "s"]}])
def test_a_chain_line_is_the_records_json_with_seq_and_prev_last(rec):
    expected = json.dumps({**rec, "seq": 7, "prev": GENESIS}, separators=(",", ":")) + "\n"
    assert chained_line(dict(rec), 7, GENESIS) == expected.encode("ascii")
