"""The second sink's side (``scripts/services/auditsink.py``): who may add a line,
what a line must be, and its copy rotating with the primary."""

from __future__ import annotations

import json
import time

from scripts.services.auditsink import SinkFile, _refusal
from verifier.auditlog import AuditWriter
from verifier.auditrotate import archives, rotate
from verifier.auditverify import compare, verify


def test_only_the_verifiers_user_may_add_a_line_and_only_a_chain_line(tmp_path):
    log = tmp_path / "audit.log"
    line = AuditWriter(str(log)).append({"request_id": "r1"})
    allowed = frozenset({1000, 0})
    assert _refusal(line, 1000, allowed) is None
    assert _refusal(line, 0, allowed) is None
    assert "not the verifier's" in (_refusal(line, 33, allowed) or "")
    assert "not the verifier's" in (_refusal(line, None, allowed) or "")
    assert _refusal(b'{"request_id":"forged"}\n', 1000, allowed) == "not one audit chain line"
    assert _refusal(line + line, 1000, allowed) == "not one audit chain line"
    assert _refusal(line.rstrip(b"\n"), 1000, allowed) == "not one audit chain line"


def test_the_copy_rotates_with_the_primary_and_compares_equal(tmp_path):
    primary = tmp_path / "primary" / "audit.log"
    primary.parent.mkdir()
    copy = tmp_path / "sink" / "audit.log"
    copy.parent.mkdir()
    sink = SinkFile(copy, keep=5)
    writer = AuditWriter(str(primary))
    for n in range(3):
        sink.append(writer.append({"request_id": f"r{n}"}))
    done = rotate(primary, keep=5, now=time.time(), announce=sink.append)
    for n in range(3, 5):
        sink.append(writer.append({"request_id": f"r{n}"}))
    assert [p.name for p in archives(copy)] == [done.archive.name]
    assert copy.read_bytes() == primary.read_bytes()
    assert json.loads(copy.read_bytes().splitlines()[0])["event"] == "audit_rotated"
    both = [*archives(copy), copy]
    assert verify(both).intact
    assert compare([*archives(primary), primary], both) == (6, [])
