"""JSON schemas for the custom resources deploy/ uses, written from their published CRDs.

kubernetes-validate knows only the built-in API, so the four custom kinds are
checked against these, transcribed from the ``openAPIV3Schema`` of:

* cert-manager v1 (``deploy/crds/crd-certificates.yaml``, ``crd-issuers.yaml``
  in cert-manager/cert-manager): Certificate, Issuer;
* Prometheus Operator v0.8x (``example/prometheus-operator-crd/
  monitoring.coreos.com_servicemonitors.yaml`` and ``..._prometheusrules.yaml``
  in prometheus-operator/prometheus-operator): ServiceMonitor, PrometheusRule.

They cover the fields those CRDs define that a webhook deployment plausibly
uses (types, enums, patterns and required fields as published) and, unlike a
structural CRD, which prunes unknown fields silently, refuse any other field:
a typo here would otherwise be dropped by the API server without a word.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

DURATION = {"type": "string",
            "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
GO_DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"}
STRINGS = {"type": "array", "items": {"type": "string"}}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1}, "namespace": {"type": "string"},
                   "labels": STRING_MAP, "annotations": STRING_MAP},
}
SECRET_KEY = {
    "type": "object", "required": ["key"], "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "key": {"type": "string"},
                   "optional": {"type": "boolean"}},
}
LABEL_SELECTOR = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "matchLabels": STRING_MAP,
        "matchExpressions": {"type": "array", "items": {
            "type": "object", "required": ["key", "operator"], "additionalProperties": False,
            "properties": {"key": {"type": "string"}, "operator": {"type": "string"},
                           "values": STRINGS}}},
    },
}


def _object(api_version: str, kind: str, spec: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {"apiVersion": {"const": api_version}, "kind": {"const": kind},
                       "metadata": METADATA, "spec": spec},
    }


KEY_USAGES = [
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
    "server auth", "client auth", "code signing", "email protection", "s/mime",
    "ipsec end system", "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
    "microsoft sgc", "netscape sgc",
]

CERTIFICATE = _object("cert-manager.io/v1", "Certificate", {
    "type": "object",
    "required": ["issuerRef", "secretName"],
    "additionalProperties": False,
    "properties": {
        "secretName": {"type": "string"},
        "issuerRef": {"type": "object", "required": ["name"], "additionalProperties": False,
                      "properties": {"name": {"type": "string"}, "kind": {"type": "string"},
                                     "group": {"type": "string"}}},
        "commonName": {"type": "string", "maxLength": 64},
        "dnsNames": STRINGS, "ipAddresses": STRINGS, "uris": STRINGS, "emailAddresses": STRINGS,
        "duration": GO_DURATION, "renewBefore": GO_DURATION,
        "isCA": {"type": "boolean"},
        "usages": {"type": "array", "items": {"enum": KEY_USAGES}},
        "privateKey": {"type": "object", "additionalProperties": False, "properties": {
            "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
            "encoding": {"enum": ["PKCS1", "PKCS8"]},
            "size": {"type": "integer"},
            "rotationPolicy": {"enum": ["Never", "Always"]},
        }},
        "secretTemplate": {"type": "object", "additionalProperties": False,
                           "properties": {"labels": STRING_MAP, "annotations": STRING_MAP}},
        "revisionHistoryLimit": {"type": "integer", "minimum": 1},
    },
})

ISSUER = _object("cert-manager.io/v1", "Issuer", {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "selfSigned": {"type": "object", "additionalProperties": False,
                       "properties": {"crlDistributionPoints": STRINGS}},
        "ca": {"type": "object", "required": ["secretName"], "additionalProperties": False,
               "properties": {"secretName": {"type": "string"},
                              "crlDistributionPoints": STRINGS, "ocspServers": STRINGS,
                              "issuingCertificateURLs": STRINGS}},
    },
})

ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "port": {"type": "string"},
        "targetPort": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "path": {"type": "string"},
        "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
        "interval": DURATION, "scrapeTimeout": DURATION,
        "honorLabels": {"type": "boolean"}, "honorTimestamps": {"type": "boolean"},
        "followRedirects": {"type": "boolean"}, "enableHttp2": {"type": "boolean"},
        "filterRunning": {"type": "boolean"},
        "params": {"type": "object", "additionalProperties": STRINGS},
        "bearerTokenSecret": SECRET_KEY,
        "tlsConfig": {"type": "object", "additionalProperties": False, "properties": {
            "ca": {"type": "object", "additionalProperties": False,
                   "properties": {"secret": SECRET_KEY, "configMap": SECRET_KEY}},
            "cert": {"type": "object", "additionalProperties": False,
                     "properties": {"secret": SECRET_KEY, "configMap": SECRET_KEY}},
            "keySecret": SECRET_KEY,
            "serverName": {"type": "string"},
            "insecureSkipVerify": {"type": "boolean"},
        }},
        "relabelings": {"type": "array", "items": {"type": "object"}},
        "metricRelabelings": {"type": "array", "items": {"type": "object"}},
    },
}

SERVICE_MONITOR = _object("monitoring.coreos.com/v1", "ServiceMonitor", {
    "type": "object",
    "required": ["selector"],
    "additionalProperties": False,
    "properties": {
        "selector": LABEL_SELECTOR,
        "namespaceSelector": {"type": "object", "additionalProperties": False,
                              "properties": {"any": {"type": "boolean"}, "matchNames": STRINGS}},
        "endpoints": {"type": "array", "items": ENDPOINT},
        "jobLabel": {"type": "string"},
        "targetLabels": STRINGS, "podTargetLabels": STRINGS,
        "sampleLimit": {"type": "integer"},
    },
})

RULE = {
    "type": "object",
    "required": ["expr"],
    "additionalProperties": False,
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "properties": {
        "alert": {"type": "string"}, "record": {"type": "string"},
        "expr": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "for": DURATION, "keep_firing_for": {**DURATION, "minLength": 1},
        "labels": STRING_MAP, "annotations": STRING_MAP,
    },
}

PROMETHEUS_RULE = _object("monitoring.coreos.com/v1", "PrometheusRule", {
    "type": "object",
    "additionalProperties": False,
    "properties": {"groups": {"type": "array", "items": {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1}, "interval": DURATION,
                       "limit": {"type": "integer"}, "query_offset": DURATION,
                       "labels": STRING_MAP, "rules": {"type": "array", "items": RULE}},
    }}},
})

BY_KIND: dict[tuple[str, str], Schema] = {
    ("cert-manager.io/v1", "Certificate"): CERTIFICATE,
    ("cert-manager.io/v1", "Issuer"): ISSUER,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
}
