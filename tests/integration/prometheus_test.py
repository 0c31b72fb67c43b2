#!/usr/bin/python3
"""A real Prometheus scrapes the real server.

Starts trialrules-server (rules: the bundled files plus one broken file),
starts Debian's prometheus on loopback with a scrape configuration pointing at
the server's /metrics and the project's alerting rules loaded, makes calls with
the trialrules CLI, then asks Prometheus's HTTP API until the expected series
have the expected values. Every query of the Grafana dashboard must also run
and return data.

usage: prometheus_test.py --server BIN --cli BIN --source DIR
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

ARGS = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, seconds=60):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except OSError as error:  # not listening yet
            last = error
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class RealPrometheusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="trialrules-prometheus-")
        rules = os.path.join(cls.work, "rules")
        shutil.copytree(os.path.join(ARGS.source, "rules"), rules)
        with open(os.path.join(rules, "NCT04094766-v9.9.textproto"), "w") as broken:
            broken.write('protocol_id: "NCT04094766"\nversion: "9.9"\nnot_a_field: 1\n')
        cls.processes = []
        port_file = os.path.join(cls.work, "port")
        cls.log = open(os.path.join(cls.work, "server.log"), "w")
        cls.processes.append(subprocess.Popen(
            [ARGS.server, "--listen=127.0.0.1:0", "--plaintext", "--metrics-address=127.0.0.1:0",
             "--rules-dir=" + rules, "--port-file=" + port_file,
             "--audit-log=" + os.path.join(cls.work, "audit.jsonl")],
            stdout=subprocess.DEVNULL, stderr=cls.log))
        wait_for("the server's port file", lambda: os.path.exists(port_file), 20)
        with open(port_file) as ports:
            cls.grpc_port, cls.metrics_port, _ = map(int, ports.read().split())

        # The ports are open before the rules directory is read; the calls
        # below need the rules (slow to check under the sanitizers).
        def rules_loaded():
            page = urllib.request.urlopen(
                f"http://127.0.0.1:{cls.metrics_port}/metrics", timeout=2).read().decode()
            return any(line.startswith("trialrules_rule_sets_loaded ") and
                       float(line.split()[1]) > 0 for line in page.splitlines())
        wait_for("the server to load its rules", rules_loaded, 60)

        config = os.path.join(cls.work, "prometheus.yml")
        with open(config, "w") as out:
            out.write(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {os.path.join(ARGS.source, "k8s/monitoring/alerts.rules.yaml")}
scrape_configs:
  - job_name: trialrules
    static_configs:
      - targets: ["127.0.0.1:{cls.metrics_port}"]
""")
        cls.prometheus_port = free_port()
        cls.prometheus_log = open(os.path.join(cls.work, "prometheus.log"), "w")
        cls.processes.append(subprocess.Popen(
            ["prometheus", "--config.file=" + config,
             "--storage.tsdb.path=" + os.path.join(cls.work, "tsdb"),
             f"--web.listen-address=127.0.0.1:{cls.prometheus_port}"],
            stdout=subprocess.DEVNULL, stderr=cls.prometheus_log))
        wait_for("prometheus to be ready", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{cls.prometheus_port}/-/ready", timeout=2).status == 200)

        # The calls: three eligible patients, one refused for an unknown
        # fact, and a withdrawal check.
        facts = os.path.join(ARGS.source, "tests/data/facts/eligible_patient.json")
        target = f"127.0.0.1:{cls.grpc_port}"
        for _ in range(3):
            cls.cli("eval", "--server", target, "--protocol", "NCT04094766", "--facts", facts)
        bad = os.path.join(cls.work, "bad.json")
        with open(bad, "w") as out:
            out.write('{"facts": {"informed_consent": true, "shoe_size": 42}}')
        refused = cls.cli("eval", "--server", target, "--protocol", "NCT04094766",
                          "--facts", bad, expect_ok=False)
        if "shoe_size" not in refused.stderr:
            raise AssertionError(f"expected the server to refuse shoe_size: {refused.stderr}")
        cls.cli("eval", "--server", target, "--protocol", "NCT04094766", "--version", "1.0",
                "--kind", "withdrawal", "--facts", facts)

    @classmethod
    def cli(cls, *args, expect_ok=True):
        result = subprocess.run([ARGS.cli, *args], capture_output=True, text=True, timeout=30)
        if expect_ok and result.returncode != 0:
            raise AssertionError(f"trialrules {' '.join(args)}: {result.stderr}")
        return result

    @classmethod
    def tearDownClass(cls):
        for process in cls.processes:
            process.send_signal(signal.SIGTERM)
        for process in cls.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        cls.log.close()
        cls.prometheus_log.close()
        shutil.rmtree(cls.work, ignore_errors=True)

    def query(self, expr):
        url = (f"http://127.0.0.1:{self.prometheus_port}/api/v1/query?"
               + urllib.parse.urlencode({"query": expr}))
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        self.assertEqual(body["status"], "success", expr)
        return body["data"]["result"]

    def wait_for_value(self, expr, expected):
        def check():
            result = self.query(expr)
            return len(result) == 1 and float(result[0]["value"][1]) == expected
        try:
            wait_for(f"{expr} == {expected}", check, 30)
        except AssertionError:
            self.fail(f"{expr}: {self.query(expr)}, wanted {expected}")

    def test_target_is_up(self):
        self.wait_for_value('up{job="trialrules"}', 1)

    def test_calls_by_method_and_code(self):
        base = ('trialrules_grpc_server_handled_total{job="trialrules",'
                'grpc_service="trialrules.v1.TrialRules",grpc_method="%s",grpc_code="%s"}')
        self.wait_for_value(base % ("CheckEligibility", "OK"), 3)
        self.wait_for_value(base % ("CheckEligibility", "INVALID_ARGUMENT"), 1)
        self.wait_for_value(base % ("CheckWithdrawal", "OK"), 1)
        self.wait_for_value(
            'trialrules_grpc_server_handling_seconds_count{grpc_method="CheckEligibility"}', 4)

    def test_decisions_and_the_funnel(self):
        self.wait_for_value('trialrules_decisions_total{protocol="NCT04094766",version="1.0",'
                            'kind="eligibility",decision="ELIGIBLE"}', 3)
        self.wait_for_value('trialrules_rule_outcomes_total{version="1.0",rule="I1",'
                            'rule_kind="inclusion",outcome="TRUE"}', 3)
        self.wait_for_value('trialrules_rule_outcomes_total{version="1.0",rule="E1",'
                            'outcome="FALSE"}', 3)

    def test_catalog_series(self):
        # NCT04094766 1.0 and 2.0, NCT03671460 1.0.
        self.wait_for_value("trialrules_rule_sets_loaded", 3)
        self.wait_for_value("count(trialrules_rule_set_info)", 3)
        self.wait_for_value('trialrules_rule_file_rejected{file=~".*NCT04094766-v9.9.textproto"}', 1)
        self.wait_for_value('trialrules_reloads_total{result="success"}', 0)
        self.wait_for_value('trialrules_reloads_total{result="rejected"} > bool 0', 1)
        self.wait_for_value("trialrules_audit_write_failures_total", 0)
        self.wait_for_value("process_open_fds > bool 0", 1)

    def test_alert_rules_are_loaded_and_healthy(self):
        url = f"http://127.0.0.1:{self.prometheus_port}/api/v1/rules"

        def loaded():
            with urllib.request.urlopen(url, timeout=5) as response:
                groups = json.load(response)["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            return rules if rules and all("lastEvaluation" in r and
                                          not r["lastEvaluation"].startswith("0001")
                                          for r in rules) else None
        rules = wait_for("the alerting rules to be evaluated", loaded, 30)
        self.assertEqual(len(rules), 5)
        for rule in rules:
            self.assertEqual(rule["health"], "ok", rule)

    def test_every_dashboard_query_runs_and_returns_data(self):
        with open(os.path.join(ARGS.source, "k8s/monitoring/grafana-dashboard.json")) as f:
            dashboard = json.load(f)
        # Rates need two scrapes inside the window.
        wait_for("a second scrape", lambda: self.query(
            'count_over_time(up{job="trialrules"}[1m]) >= 3'), 30)
        substitutions = {"$__rate_interval": "1m", "$__range": "5m", "$job": ".*",
                         "$protocol": ".*"}
        exprs = [target["expr"] for panel in dashboard["panels"]
                 for target in panel.get("targets", [])]
        self.assertGreaterEqual(len(exprs), 15)
        for expr in exprs:
            concrete = expr
            for variable, value in substitutions.items():
                concrete = concrete.replace(variable, value)
            self.assertNotIn("$", concrete, expr)
            with self.subTest(expr=expr):
                wait_for(f"data for {concrete}", lambda: self.query(concrete), 30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--cli", required=True)
    parser.add_argument("--source", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
