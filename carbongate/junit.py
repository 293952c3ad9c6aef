"""JUnit XML, the report every CI system shows (GitLab, Jenkins, GitHub actions' test reporters).

``carbongate test`` and ``carbongate policy test`` both write it, so it is
written once: one ``<testsuite>`` per suite, a ``<failure>`` or ``<error>``
with the message in the attribute and the detail in the body.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Status = Literal["pass", "fail", "error", "skip"]


@dataclass(frozen=True)
class Case:
    """One test's outcome, as JUnit sees it."""

    suite: str
    name: str
    status: Status
    message: str = ""
    detail: str = ""


def render(cases: Iterable[Case], *, name: str) -> str:
    """The XML document, suites in the order their first case came."""
    root = ET.Element("testsuites", name=name)
    suites: dict[str, ET.Element] = {}
    counts: dict[str, dict[str, int]] = {}
    for case in cases:
        if case.suite not in suites:
            suites[case.suite] = ET.SubElement(root, "testsuite", name=case.suite)
            counts[case.suite] = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        element = ET.SubElement(suites[case.suite], "testcase", classname=case.suite, name=case.name)
        tally = counts[case.suite]
        tally["tests"] += 1
        if case.status in ("fail", "error"):
            tag = "failure" if case.status == "fail" else "error"
            tally["failures" if case.status == "fail" else "errors"] += 1
            child = ET.SubElement(element, tag, message=case.message.splitlines()[0] if case.message else tag)
            child.text = case.detail or case.message
        elif case.status == "skip":
            tally["skipped"] += 1
            ET.SubElement(element, "skipped")
    for suite, element in suites.items():
        for key, value in counts[suite].items():
            element.set(key, str(value))
    totals = {key: sum(c[key] for c in counts.values()) for key in ("tests", "failures", "errors", "skipped")}
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
