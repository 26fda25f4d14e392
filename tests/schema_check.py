"""Checks funnel's JSON Schemas with an independent checker (check-jsonschema).

1. Every schema under schema/ is valid draft-07 (metaschema check).
2. Every YAML file of the demo workspace validates against its schema.
3. Every broken fixture file that marks an unknown-key, wrong-type or missing-key
   problem (see tests/integration/fixtures.rs) is rejected by the checker.
4. The daemon's OpenAPI document, as the API test saved it from a running daemon
   (target/tmp/openapi.json), is a valid OpenAPI 3.1 document
   (openapi-spec-validator).

Run by `.ci/test` with check-jsonschema installed; exits non-zero on any failure.
"""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHECKER = [sys.executable, "-m", "check_jsonschema"]

# Which schema a workspace path uses; mirrors `workspace::classify`.
PATTERNS = [
    (r"^funnel\.yaml$", "funnel"),
    (r"^workflows/tests/[^/]+\.yaml$", "workflow-test"),
    (r"^workflows/[^/]+\.yaml$", "workflow"),
    (r"^templates/sites/[^/]+/template\.yaml$", "site-template"),
    (r"^templates/components/[^/]+/component\.yaml$", "component"),
    (r"^templates/emails/layouts/[^/]+\.yaml$", "email-layout"),
    (r"^templates/emails/[^/]+\.yaml$", "email-template"),
    (r"^sites/[^/]+/site\.yaml$", "site"),
    (r"^contacts/(fields|lists|segments|scoring|pipelines)\.yaml$", None),
]


def kind_of(rel):
    for pattern, kind in PATTERNS:
        m = re.match(pattern, rel)
        if m:
            return kind or m.group(1)
    return None


def check(schema_kind, files):
    schema = ROOT / "schema" / f"{schema_kind}.schema.json"
    cmd = CHECKER + ["--schemafile", str(schema)] + [str(f) for f in files]
    return subprocess.run(cmd, capture_output=True, text=True)


def main():
    failures = []
    passed = 0

    schemas = sorted((ROOT / "schema").glob("*.schema.json"))
    r = subprocess.run(CHECKER + ["--check-metaschema"] + [str(s) for s in schemas],
                       capture_output=True, text=True)
    if r.returncode != 0:
        failures.append("metaschema check failed:\n" + r.stdout + r.stderr)
    else:
        passed += 1

    demo = {}
    for path in sorted(ROOT.glob("**/*.yaml")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("tests/", "target/", ".")):
            continue
        kind = kind_of(rel)
        if kind:
            demo.setdefault(kind, []).append(path)
    for kind, files in sorted(demo.items()):
        r = check(kind, files)
        if r.returncode != 0:
            failures.append(f"demo files rejected by the {kind} schema:\n{r.stdout}{r.stderr}")
        else:
            passed += 1

    marker = re.compile(r"# expect(?:-at)?:.*\b(unknown-key|wrong-type|missing-key)\b")
    broken = ROOT / "tests" / "fixtures" / "broken"
    rejected = 0
    for path in sorted(broken.glob("*/**/*.yaml")):
        rel = path.relative_to(broken).as_posix().split("/", 1)[1]
        kind = kind_of(rel)
        text = path.read_text(encoding="utf-8", errors="replace")
        if kind is None or not marker.search(text):
            continue
        r = check(kind, [path])
        if r.returncode == 0:
            failures.append(f"{path.relative_to(ROOT)} was accepted by the {kind} schema")
        else:
            rejected += 1
            passed += 1
    if rejected == 0:
        failures.append("no structural fixture was found to check")

    openapi = ROOT / "target" / "tmp" / "openapi.json"
    if not openapi.is_file():
        failures.append(f"{openapi.relative_to(ROOT)} is missing: run the API test first")
    else:
        from openapi_spec_validator import validate
        from openapi_spec_validator.readers import read_from_filename

        spec, _ = read_from_filename(str(openapi))
        try:
            validate(spec)
            passed += 1
        except Exception as e:  # the validator's errors have no common base
            failures.append(f"the OpenAPI document is invalid: {e}")

    for f in failures:
        print("FAIL:", f)
    print(f"schema checks: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
