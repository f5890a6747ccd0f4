"""Unit tests of the chaos framework: payloads, scenarios, proxy evidence, the invariant verdict, redrive, reports."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from harness.chaos import report, scenarios, storage
from harness.chaos.errors import ChaosError, UnknownScenario
from harness.chaos.faults import FaultInjector, FaultRule, S3Request
from harness.chaos.inputs import KINDS, POISON_CODES, payload, png
from harness.chaos.proof import check
from harness.chaos.proxy import Exchange
from harness.chaos.report import COLUMNS
from harness.chaos.result import ScenarioResult
from harness.chaos.runners import localize
from harness.chaos.triggers import MidBatchTrigger
from harness.chaos.verdict import Expectation, ProxyEvidence, judge, proxy_evidence
from harness.load.observe import Accounting, Outcome, PipelineTarget, UploadOutcome

TARGET = PipelineTarget(
    input_bucket="in",
    output_bucket="out",
    queue_url="http://q/main",
    dlq_url="http://q/dlq",
    function_name="fn",
    sizes=("large", "small"),
)
RUN = "chaos-x-1"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, tag = struct.unpack(">I4s", data[8:16])
    assert tag == b"IHDR" and length == 13
    crc = struct.unpack(">I", data[16 + length : 20 + length])[0]
    assert crc == zlib.crc32(data[12 : 16 + length]) & 0xFFFFFFFF
    return struct.unpack(">II", data[16:24])


def ex(
    method: str,
    bucket: str,
    key: str,
    *,
    status: int = 200,
    injected: str | None = None,
    call: str = "c",
    attempt: int = 1,
    sha: str | None = None,
    delay: float = 0.0,
) -> Exchange:
    return Exchange(0.0, method, bucket, key, status, injected, delay, call, attempt, sha, 0)


# ---- payloads -------------------------------------------------------------------------------------------------
def test_images_are_valid_pngs_whose_pixels_decompress_to_the_declared_size() -> None:
    data = png(40, 30, seed=3)
    assert png_size(data) == (40, 30)
    idat_len = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    assert len(zlib.decompress(data[41 : 41 + idat_len])) == 30 * (1 + 40 * 3)


def test_every_kind_has_a_payload_and_poison_kinds_have_expected_codes() -> None:
    bodies = {kind: payload(kind, seed=1) for kind in KINDS}
    assert not bodies["image"].poison and all(bodies[k].poison for k in POISON_CODES)
    assert png_size(bodies["bomb"].body) == (40_000, 40_000) and len(bodies["bomb"].body) < 10_000
    assert bodies["empty"].body == b""
    assert bodies["corrupt"].body == png(320, 240, 1)[: len(bodies["corrupt"].body)]
    assert payload("image", 1).body != payload("image", 2).body
    with pytest.raises(ChaosError, match="Expected one of image"):
        payload("gif")


# ---- scenarios -------------------------------------------------------------------------------------------------
def test_scenario_catalogue_is_complete_and_ordered_with_restart_last() -> None:
    assert set(scenarios.ORDER) == set(scenarios.SCENARIOS) and scenarios.ORDER[-1] == "restart"
    for required in (
        "poison",
        "crash",
        "timeout",
        "s3-throttle",
        "s3-500",
        "output-denied",
        "visibility",
        "restart",
        "fix-redrive",
    ):
        assert required in scenarios.SCENARIOS
    assert scenarios.get("crash").action == "kill-runtime"
    assert scenarios.get("poison").scaled(0.25).images == 3
    with pytest.raises(UnknownScenario, match="Expected one of poison"):
        scenarios.get("meteor")
    with pytest.raises(UnknownScenario, match="for action"):
        scenarios.Scenario("x", "x", action="flood")


def test_rules_are_bound_to_the_runs_source_keys_and_the_output_bucket() -> None:
    source = localize(FaultRule(method="GET", error="SlowDown", key_prefix=scenarios.SOURCE), TARGET, RUN)
    assert (source.bucket, source.key_prefix) == ("in", f"uploads/{RUN}/")
    output = localize(FaultRule(method="PUT", error="AccessDenied", key_prefix=scenarios.THUMBS), TARGET, RUN)
    assert (output.bucket, output.key_prefix) == ("out", "thumbnails/")
    injector = FaultInjector(rules=(source,))
    assert injector.decide(S3Request("GET", "in", f"uploads/{RUN}/000-image.png")).error == "SlowDown"
    assert injector.decide(S3Request("GET", "in", "uploads/other-run/000-image.png")).error is None


def test_calls_per_key_fails_every_attempt_of_the_first_call_only() -> None:
    injector = FaultInjector(rules=(FaultRule(method="GET", error="InternalError", calls_per_key=1),))
    first = [injector.decide(S3Request("GET", "b", "k", call_id="call-1")).error for _ in range(4)]
    assert first == ["InternalError"] * 4  # every botocore retry of the first call
    assert injector.decide(S3Request("GET", "b", "k", call_id="call-2")).error is None  # the redelivery
    assert injector.decide(S3Request("GET", "b", "k2", call_id="call-3")).error == "InternalError"


# ---- proxy evidence and verdict -----------------------------------------------------------------------------
def test_proxy_evidence_counts_deliveries_retries_faults_and_duplicate_writes() -> None:
    src, thumb = f"uploads/{RUN}/000-image.png", f"thumbnails/small/{RUN}/000-image.png.png"
    exchanges = [
        ex("GET", "in", src, status=503, injected="SlowDown", call="a"),
        ex("GET", "in", src, call="a", attempt=2),
        ex("PUT", "out", thumb, sha="s1"),
        ex("GET", "in", src, call="b"),  # redelivery
        ex("PUT", "out", thumb, sha="s1"),
        ex("GET", "in", "uploads/another-run/x.png", call="z"),  # not this run
        ex("GET", "in", f"uploads/{RUN}/001-image.png", delay=1.5, call="c"),
    ]
    evidence = proxy_evidence(exchanges, TARGET, RUN)
    assert evidence.requests == 6 and evidence.client_retries == 1
    assert evidence.injected == {"SlowDown": 1, "delay": 1}
    assert evidence.deliveries == {src: 2, f"uploads/{RUN}/001-image.png": 1} and evidence.redeliveries == 1
    assert evidence.duplicate_writes == 1 and evidence.nonidentical == ()
    differing = proxy_evidence(exchanges + [ex("PUT", "out", thumb, sha="s2")], TARGET, RUN)
    assert differing.nonidentical == (thumb,)


def accounting(*outcomes: UploadOutcome, conflicts: tuple[str, ...] = ()) -> Accounting:
    return Accounting(RUN, tuple(o.key for o in outcomes), outcomes, conflicts=conflicts)


def test_verdict_holds_when_everything_is_complete_or_dead_lettered_with_a_code() -> None:
    acc = accounting(UploadOutcome("a", Outcome.COMPLETE), UploadOutcome("p", Outcome.DLQ, dlq_code="CORRUPT_IMAGE"))
    verdict = judge(
        acc, [Expectation("a"), Expectation("p", "corrupt", "dlq", frozenset({"CORRUPT_IMAGE"}))], ProxyEvidence()
    )
    assert verdict.held and verdict.by_code == {"CORRUPT_IMAGE": 1, "OK": 1} and verdict.unexpected == ()


def test_verdict_fails_on_loss_missing_reason_or_differing_duplicates_and_flags_surprises() -> None:
    acc = accounting(
        UploadOutcome("a", Outcome.MISSING),
        UploadOutcome("b", Outcome.DLQ, dlq_code=None),
        UploadOutcome("c", Outcome.COMPLETE),
    )
    verdict = judge(
        acc,
        [Expectation("a"), Expectation("b"), Expectation("c", expect="dlq")],
        ProxyEvidence(writes={"t": ("x", "y")}),
    )
    assert not verdict.held
    assert verdict.lost == ("a",) and verdict.no_reason == ("b",) and verdict.nonidentical == ("t",)
    assert set(verdict.unexpected) == {"a", "b", "c"}
    assert judge(accounting(UploadOutcome("c", Outcome.COMPLETE)), [Expectation("c", expect="dlq")], None).held


def test_expectations_with_codes_and_either() -> None:
    poison = Expectation("p", "bomb", "dlq", frozenset({"TOO_MANY_PIXELS"}))
    assert poison.met_by("dlq", "TOO_MANY_PIXELS") and not poison.met_by("dlq", "CORRUPT_IMAGE")
    assert Expectation("x", expect="either").met_by("complete", None)
    assert not Expectation("x", expect="either").met_by("missing", None)


def test_mid_batch_trigger_fires_once_after_a_complete_upload_on_the_next_source_read() -> None:
    fired: list[str] = []
    trigger = MidBatchTrigger(TARGET, RUN, lambda: fired.append("kill") or "killed")
    src = f"uploads/{RUN}/000-image.png"
    trigger(ex("GET", "in", src))
    trigger(ex("PUT", "out", f"thumbnails/large/{RUN}/000-image.png.png", sha="1"))
    trigger(ex("GET", "in", f"uploads/{RUN}/001-image.png"))  # only one size written: not yet
    assert not fired
    trigger(ex("PUT", "out", f"thumbnails/small/{RUN}/000-image.png.png", sha="2"))
    trigger(ex("GET", "in", f"uploads/{RUN}/001-image.png"))
    trigger(ex("GET", "in", f"uploads/{RUN}/002-image.png"))
    assert fired == ["kill"] and trigger.result == "killed" and trigger.fired.is_set()


# ---- redrive --------------------------------------------------------------------------------------------------
class FakeSqs:
    """In-memory SQS with receive/visibility/delete/send, enough for the redrive logic."""

    def __init__(self, dlq: list[dict[str, Any]]) -> None:
        self.queues: dict[str, list[dict[str, Any]]] = {"http://q/dlq": dlq, "http://q/main": []}
        self.hidden: set[str] = set()
        self.sent: list[dict[str, Any]] = []

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        visible = [m for m in self.queues[QueueUrl] if m["MessageId"] not in self.hidden][:MaxNumberOfMessages]
        self.hidden.update(m["MessageId"] for m in visible)
        return {"Messages": [{**m, "ReceiptHandle": "rh-" + m["MessageId"]} for m in visible]}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        for e in Entries:
            self.hidden.discard(e["ReceiptHandle"][3:])
        return {}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        ids = {e["ReceiptHandle"][3:] for e in Entries}
        self.queues[QueueUrl] = [m for m in self.queues[QueueUrl] if m["MessageId"] not in ids]
        self.hidden -= ids
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    def send_message(self, QueueUrl: str, MessageBody: str, MessageAttributes: dict[str, Any]) -> dict[str, Any]:
        self.sent.append({"queue": QueueUrl, "body": MessageBody, "attrs": MessageAttributes})
        return {"MessageId": f"new-{len(self.sent)}"}


def s3_event(key: str) -> str:
    return json.dumps(
        {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "in"}, "object": {"key": key}}}]}
    )


def handler_message(mid: str, key: str, code: str, run: str = RUN) -> dict[str, Any]:
    body = {
        "source": {"bucket": "in", "key": key},
        "error": {"code": code, "message": "nope"},
        "run_id": run,
        "original": s3_event(key),
    }
    return {
        "MessageId": mid,
        "Body": json.dumps(body),
        "MessageAttributes": {"error_code": {"DataType": "String", "StringValue": code}},
    }


def test_redrive_moves_only_matching_messages_with_their_original_bodies() -> None:
    dlq = [
        handler_message("m1", f"uploads/{RUN}/000-image.png", "ACCESS_DENIED"),
        handler_message("m2", f"uploads/{RUN}/001-corrupt.png", "CORRUPT_IMAGE"),
        handler_message("m3", "uploads/other/000-image.png", "ACCESS_DENIED", run="other"),
        {"MessageId": "m4", "Body": s3_event(f"uploads/{RUN}/002-image.png"), "Attributes": {}},
    ]
    sqs = FakeSqs(dlq)
    result = storage.redrive(sqs, TARGET, run_id=RUN, codes=frozenset({"ACCESS_DENIED", "REDRIVEN"}), deadline_s=5)
    assert result.moved == 2 and result.by_code == {"ACCESS_DENIED": 1, "REDRIVEN": 1} and result.skipped == 2
    assert [s["body"] for s in sqs.sent] == [
        s3_event(f"uploads/{RUN}/000-image.png"),
        s3_event(f"uploads/{RUN}/002-image.png"),
    ]
    assert all(s["queue"] == "http://q/main" for s in sqs.sent)
    assert [m["MessageId"] for m in sqs.queues["http://q/dlq"]] == ["m2", "m3"] and not sqs.hidden


def test_redrive_dry_run_moves_nothing_and_releases_everything() -> None:
    sqs = FakeSqs([handler_message("m1", f"uploads/{RUN}/000-image.png", "ACCESS_DENIED")])
    result = storage.redrive(sqs, TARGET, dry_run=True, deadline_s=5)
    assert result.moved == 1 and result.by_code == {"ACCESS_DENIED": 1}  # would move
    assert not sqs.sent and not sqs.hidden and len(sqs.queues["http://q/dlq"]) == 1


def test_original_body_is_rebuilt_from_the_source_when_the_handler_kept_none() -> None:
    body = json.dumps({"source": {"bucket": "in", "key": "uploads/a b.png"}, "error": {"code": "X"}})
    message = storage.DlqMessage("m", "rh", body, "uploads/a b.png", RUN, "X", "handler")
    doc = json.loads(storage.original_body(message, "in"))
    assert doc["Records"][0]["s3"]["object"]["key"] == "uploads/a%20b.png"
    bad = storage.DlqMessage("m", "rh", json.dumps({"error": {"code": "X"}}), None, RUN, "X", "handler")
    with pytest.raises(ChaosError, match="Expected a source key"):
        storage.original_body(bad, "in")


# ---- reports --------------------------------------------------------------------------------------------------
def sample_result(name: str, held: bool = True, fired: bool = True) -> dict[str, Any]:
    acc = accounting(
        UploadOutcome("a", Outcome.COMPLETE), UploadOutcome("b", Outcome.COMPLETE if held else Outcome.MISSING)
    )
    verdict = judge(acc, [Expectation("a"), Expectation("b")], ProxyEvidence())
    counters = {"injected:SlowDown": 3 if fired else 0, "client_retries": 2 if fired else 0}
    proof = check(scenarios.get("s3-throttle").proof, counters, images=2, poison=0)  # type: ignore[arg-type]
    return ScenarioResult(
        name,
        f"title of {name}",
        RUN,
        2,
        0,
        {"SlowDown": 3},
        2,
        1,
        0,
        1,
        verdict.by_code,
        4.25,
        True,
        verdict,
        actions=("did a thing",),
        evidence=counters,
        proof=proof,
    ).to_dict()


def test_report_writes_json_and_markdown_with_the_table(tmp_path: Path) -> None:
    results = [sample_result("s3-throttle"), sample_result("restart", held=False)]
    folder, doc = report.write(
        results, endpoint="http://127.0.0.1:1", stack="chaos", function="fn", wall_s=12.0, out_root=tmp_path
    )
    assert folder.name.startswith("chaos-") and not doc["all_held"]
    saved = json.loads((folder / "report.json").read_text())
    assert [s["name"] for s in saved["scenarios"]] == ["s3-throttle", "restart"]
    assert saved["scenarios"][0]["faults_injected"] == {"SlowDown": 3} and saved["scenarios"][0]["drain_s"] == 4.25
    md = (folder / "report.md").read_text()
    assert "| s3-throttle | 2 | SlowDown 3 | 2 | 1 | OK 2 | 1 (yes) | 4.2 | held |" in md
    assert "| yes (injected:SlowDown 3/1) | yes (client_retries 2/1) | PASSED |" in md
    assert saved["scenarios"][0]["status"] == "PASSED" and saved["scenarios"][1]["status"].startswith("FAILED")
    assert "NOT held" in md and "- lost: 1 (e.g. b)" in md
    text = report.table(results, markdown=False)
    assert text.splitlines()[0].startswith("scenario") and len(text.splitlines()) == 3


def test_a_limitation_is_shown_and_fails_the_run(tmp_path: Path) -> None:
    limited = {**sample_result("restart", held=False), "limitation": "state is in memory only"}
    limited["status"] = "FAILED (invariant not held)"
    assert report.row(limited)[COLUMNS.index("invariant")] == "NOT held (limitation)"
    _, doc = report.write(
        [sample_result("poison"), limited], endpoint="e", stack="s", function="f", wall_s=1.0, out_root=tmp_path
    )
    assert not doc["all_held"] and doc["all_held_or_explained"]
    assert not doc["all_passed"]  # `make chaos` exits 1: a limitation is a failure too
    _, passing = report.write(
        [sample_result("poison"), sample_result("s3-throttle")],
        endpoint="e",
        stack="s",
        function="f",
        wall_s=1.0,
        out_root=tmp_path,
    )
    assert passing["all_passed"]


def test_a_scenario_whose_fault_did_not_fire_is_failed_in_the_report(tmp_path: Path) -> None:
    silent = sample_result("s3-throttle", held=True, fired=False)
    assert silent["invariant_held"] and silent["status"] == "FAILED (fault not exercised)" and not silent["passed"]
    assert report.row(silent)[-1] == "FAILED (fault not exercised)"
    assert report.row(silent)[COLUMNS.index("fault fired")] == "NO (injected:SlowDown 0/1)"
    _, doc = report.write([silent], endpoint="e", stack="s", function="f", wall_s=1.0, out_root=tmp_path)
    assert doc["all_held"] and not doc["all_passed"]


def test_cli_lists_scenarios_and_parses_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.chaos import cli

    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in scenarios.ORDER)
    parser = __import__("argparse").ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["all", "--skip", "restart", "--scale", "0.5", "--no-deploy"])
    assert (args.scenario, args.skip, args.scale, args.no_deploy) == ("all", ["restart"], 0.5, True)
    args = parser.parse_args(["redrive", "--stack", "thumbs", "--code", "STORAGE_ERROR", "--dry-run"])
    assert (args.stack, args.code, args.dry_run, args.run_id) == ("thumbs", ["STORAGE_ERROR"], True, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["meteor"])


def test_fault_spec_round_trip_of_options_and_labels() -> None:
    rule = FaultRule.parse("get:InternalError:calls_per_key=1,prefix=uploads/,bucket=in")
    assert (rule.method, rule.error, rule.calls_per_key, rule.key_prefix, rule.bucket) == (
        "GET",
        "InternalError",
        1,
        "uploads/",
        "in",
    )
    assert rule.label == "GET:InternalError"
    assert FaultRule.parse("PUT:SlowDown:delay=0.5").label == "PUT:SlowDown+delay0.5s"
    assert FaultRule.parse("GET:delay=2").label == "GET:delay2s"
