"""Parsing AdmissionReview v1 requests and shaping responses."""

from __future__ import annotations

import base64
import json

import pytest

from tests.webhook import builders
from webhook import reviews


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}).encode(), "apiVersion"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}).encode(), "kind must be"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(), "no 'request'"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                     "request": {"kind": {"kind": "Pod"}}}).encode(), "request.uid"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                     "request": {"uid": "u"}}).encode(), "request.kind"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                     "request": {"uid": "u", "kind": {"kind": "Pod"}, "object": [1]}}).encode(), "request.object"),
    ],
)
def test_malformed_bodies_are_refused_with_a_message_that_says_why(raw: bytes, message: str) -> None:
    with pytest.raises(reviews.BadReview, match=message):
        reviews.parse(raw)


def test_a_patch_array_is_not_mistaken_for_a_review() -> None:
    raw = (builders.FIXTURES / "mutating-response-jsonpatch_for-pod-create__salesforce.json").read_bytes()
    with pytest.raises(reviews.BadReview):
        reviews.parse(raw)


def test_every_captured_request_parses() -> None:
    for path in sorted(builders.LOOPBACK.glob("*.json")) + sorted(builders.FIXTURES.glob("*create*.json")):
        if "mutating-response" in path.name:
            continue
        request = reviews.parse(path.read_bytes())
        assert request.uid and request.kind, path.name


def test_dry_run_flag_is_read_from_the_real_dry_run_capture() -> None:
    request = reviews.parse(builders.body(builders.loopback("07_create-pod_etl-dryrun_dryrun.json")))
    assert request.dry_run is True
    assert request.kind == "Pod" and request.operation == "CREATE"


def test_response_echoes_uid_and_omits_empty_patch_and_warnings() -> None:
    response = reviews.respond("abc")
    assert response == {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                        "response": {"uid": "abc", "allowed": True}}


def test_response_patch_is_base64_json_patch() -> None:
    ops = [{"op": "add", "path": "/spec/suspend", "value": True}]
    response = reviews.respond("abc", patch=ops, warnings=["w"])
    assert response["response"]["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["response"]["patch"])) == ops
    assert reviews.decoded_patch(response) == ops
    assert response["response"]["warnings"] == ["w"]


def test_warnings_are_cut_to_what_the_api_server_accepts() -> None:
    response = reviews.respond("abc", warnings=["x" * 400, "line\nbreak"])
    long, control = response["response"]["warnings"]
    assert len(long) == 256 and long.endswith("...")
    assert control == "line break"


def test_a_denial_carries_a_status_message() -> None:
    response = reviews.respond("abc", allowed=False, message="team ml has used 812 of 800 kgCO2e")
    assert response["response"]["status"] == {"code": 403, "message": "team ml has used 812 of 800 kgCO2e"}
