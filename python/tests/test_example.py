"""The two-process client/server example: only files cross; the server never loads a secret key."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "python"


def run(*args):
    p = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_client_server_two_processes(tmp_path):
    work = tmp_path / "work"
    run(EXAMPLE / "client.py", "encrypt", "--work", work, "--images", "3")
    client, shared = work / "client", work / "shared"
    assert (client / "secret_key.bin").exists()
    # Nothing the server can read holds a secret key (HomE object type 6 at header bytes 10..12).
    for f in shared.iterdir():
        head = f.read_bytes()[:12]
        assert not (head[:8] == b"HOMEFHE\0" and head[10:12] == (6).to_bytes(2, "little")), f

    out = run(EXAMPLE / "server.py", "--shared", shared, "--threads", "2")
    assert "secret keys in this process: 0" in out
    report = json.loads((shared / "server_report.json").read_text())
    assert report["secret_keys_created"] == 0
    assert report["images"] == 3
    assert not [p for p in report["opened"] if str(client) in p], report["opened"]
    assert any(p.endswith("eval_keys.bin") for p in report["opened"])

    run(EXAMPLE / "client.py", "decrypt", "--work", work)
    result = json.loads((client / "result.json").read_text())
    assert result["agree_with_onnxruntime"] == 1.0
    assert result["max_abs_logit_error"] < 0.1
