"""The facecast command line: doctor, data, bench face."""

from __future__ import annotations

import json

from runtime.cli import main


def test_help_lists_commands(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for cmd in ("data", "doctor", "bench"):
        assert cmd in out


def test_doctor_reports_gl_and_fixes(capsys):
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert "OpenGL context" in out and "llvmpipe" in out.lower() or "OpenGL" in out
    assert "python package torch" in out
    assert code == 0


def test_data_synth_info_and_bad_input(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["data", "synth", "--identities", "1", "--labels", "mouth_open", "--out", str(out),
                 "--no-ply", "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("wrote ")          # the one-line summary
    assert main(["data", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["subjects"] == 1 and info["labels"] == ["mouth_open"] and info["bytes"]["ply"] == 0
    assert main(["data", "synth", "--labels", "yawn", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "unknown label" in capsys.readouterr().err
    assert main(["data", "info", str(tmp_path / "nothing")]) == 2
    assert "not a facecast data folder" in capsys.readouterr().err
    assert main(["data", "import", str(tmp_path / "nowhere"), "--quiet"]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_a_broken_plugin_is_reported_not_fatal(broken_plugin, capsys):
    """A command whose module cannot load is named on stderr; the rest work."""
    import runtime.cli as cli

    broken_plugin(cli, cli.COMMANDS, "broken", "trainers.no_such_module:register")
    assert main(["data", "info", "/nonexistent/folder"]) == 2
    err = capsys.readouterr().err
    assert "command 'broken' (trainers.no_such_module:register) is unavailable" in err
    assert "not a facecast data folder" in err
