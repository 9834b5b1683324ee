"""The README's two walk-throughs, run as written against a real sandbox (`gunicorn app:app` on an
empty SQLite file): every answer the README shows in a `# ...` comment is what the sandbox answers.
Values the README shortens with `...` are not compared."""
import json
import os
import re
import subprocess
import sys

from conftest import ROOT, gunicorn

SANDBOX = {"WALLET_ENV": "sandbox", "SANDBOX_DEMO": "1", "CONSOLE": "0", "HP_SECRET": "hp-sandbox-secret",
           "HASH_SECRET": "hash-sandbox-secret-0123456789ab", "HASH_MERCHANT_ID": "1001"}
PAIR = re.compile(r'"(\w+)":("(?:[^"\\]|\\.)*"|[-\d.]+|true|false)')


def walk_through(title: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {title}", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()


def run(lines: list[str], env: dict) -> list[tuple[str, str]]:
    """(the answer each command printed, the comment that follows it in the README)."""
    script, expected = [], []
    for line in lines:
        if line.startswith("# ") and ("{" in line or "HTTP/" in line) and script:
            expected[-1] = line[2:]
        elif line and not line.startswith("#"):
            script.append(line)
            if "curl" in line or line.startswith("enc "):
                script.append("echo @@")
                expected.append(None)
    done = subprocess.run(["bash", "-ec", "\n".join(script)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    answers = done.stdout.split("@@\n")[:-1]
    assert len(answers) == len(expected)
    return [(answer, shown) for answer, shown in zip(answers, expected) if shown]


def check(answer: str, shown: str) -> None:
    status = re.match(r"HTTP/1.1 (\d+)", shown)
    if status:
        assert answer.startswith(f"HTTP/1.1 {status.group(1)}"), answer[:200]
    body = json.loads(answer.strip().splitlines()[-1])
    flat = {**body, **(body.get("data") or {})} if isinstance(body.get("data"), dict) else body
    for name, value in PAIR.findall(shown):
        if "..." not in value:
            assert flat[name] == json.loads(value), (name, value, body)


def test_the_walk_throughs_answer_as_the_readme_says(tmp_path):
    url = f"sqlite:///{tmp_path}/wallet.db"
    with gunicorn(url, workers=1, extra_env=SANDBOX) as base:
        log = open(f"/tmp/gunicorn-{base.rsplit(':', 1)[1]}.log").read()
        session = log.split("session (100HP sessionId, Hash token): ")[1].split()[0]
        env = {**os.environ, **SANDBOX, "DATABASE_URL": url, "PATH": f"{os.path.dirname(sys.executable)}:"
               f"{os.environ['PATH']}"}
        for title in ("100HP walk-through", "Hash walk-through"):
            lines = [line.replace("<the session from the log>", session)
                     .replace("http://127.0.0.1:8000", base)
                     .replace(".venv/bin/flask --app app hash-encrypt \"$1\" --path \"$2\"",
                              f"flask --app app hash-encrypt \"$1\" --path \"$2\" --url {base}")
                     for line in walk_through(title)]
            for answer, shown in run(lines, env):
                check(answer, shown)
