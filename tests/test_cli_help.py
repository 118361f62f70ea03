"""Every ``glacier-velocity`` subcommand is registered and answers ``--help``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from glacier_velocity.cli import COMMANDS, build_parser, main

#: Subcommand names as users type them (module names with dashes).
SUBCOMMANDS = [name.replace("_", "-") for name in COMMANDS]


def test_every_command_module_registers_its_own_name() -> None:
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(subparsers.choices) == sorted(SUBCOMMANDS)
    assert {"package", "ogc-serve", "ogc-config", "demo-container", "extract-pairs"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: glacier-velocity {command} ")


def test_console_script_lists_the_deployment_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "glacier_velocity", "--help"], capture_output=True, text=True, check=True, timeout=120
    )
    for command in SUBCOMMANDS:
        assert command in out.stdout


def test_deployment_modules_have_no_command_line_of_their_own() -> None:
    """One convention: the library modules hold no argparse main(); cli/ does the parsing."""
    from glacier_velocity.deploy import containers, ogc, package
    from glacier_velocity.workflow import extract_pairs

    for module in (package, ogc, containers, extract_pairs):
        assert not hasattr(module, "main"), module.__name__
        assert "argparse" not in vars(module), module.__name__


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help_loads_only_its_own_module(command: str) -> None:
    """``<command> --help`` imports its own command module only (``demo`` shares ``run``'s engine
    options): ``extract-pairs --help`` loaded every command (the demo, deployment) when the fast
    path missed kebab-case names."""
    module = command.replace("-", "_")
    expected = sorted({module, "run"} if module == "demo" else {module})
    script = (
        "import sys\n"
        "from glacier_velocity.cli import COMMANDS, main\n"
        "try:\n"
        f"    main([{command!r}, '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in COMMANDS if f'glacier_velocity.cli.{m}' in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == str(expected)
