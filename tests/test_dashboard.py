"""etc/grafana/geomail.json asks only for metrics that geomail exports."""

import json
import pathlib
import re

from geomail import metrics

ROOT = pathlib.Path(__file__).resolve().parent.parent
SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def exported_names():
    from prometheus_client import REGISTRY
    metrics.get()
    names = set()
    for family in REGISTRY.collect():
        for sample in family.samples:
            names.add(sample.name)
        names.add(family.name)
    return names


def test_every_panel_queries_an_exported_metric():
    dashboard = json.loads((ROOT / "etc" / "grafana" / "geomail.json").read_text())
    exported = exported_names()
    asked = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            asked |= set(re.findall(r"geomail_[a-z0-9_]+", target["expr"]))
    assert asked, "no geomail metric in the dashboard"
    missing = {name for name in asked
               if name not in exported and not any(name.endswith(s) and name[:-len(s)] in exported
                                                   for s in SUFFIXES)}
    assert not missing, missing


def test_every_metric_has_a_panel():
    dashboard = (ROOT / "etc" / "grafana" / "geomail.json").read_text()
    from prometheus_client import REGISTRY
    metrics.get()
    families = {family.name for family in REGISTRY.collect() if family.name.startswith("geomail_")}
    assert families
    assert not {name for name in families if name not in dashboard}, families
