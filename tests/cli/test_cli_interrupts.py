"""A Ctrl-C (or the CLI's SIGTERM) whose KeyboardInterrupt a C extension drops is raised again.

MLX's array constructor drops a KeyboardInterrupt that a signal handler raises while it converts a
numpy array (cancel.py has the measurement), so the CLI's handler notes each signal and long loops
call `cancel.raise_dropped_interrupt()`. Here the drop is made on purpose: the handler runs inside
a `try` that swallows its exception, as that constructor does.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from mlx_audio_coreml import cancel
from mlx_audio_coreml.cli import _ctrl_c_noted, main


@pytest.fixture(autouse=True)
def _forget_noted_signals() -> Iterator[None]:
    cancel.interrupt_handled()
    yield
    cancel.interrupt_handled()


def _dropped(signum: int) -> None:
    """The handler runs and its KeyboardInterrupt is swallowed, as inside MLX's array constructor."""
    try:
        cancel.interrupt_handler(signum, None)
    except KeyboardInterrupt:
        pass


def test_nothing_noted_is_no_op() -> None:
    cancel.raise_dropped_interrupt()  # no signal: returns


def test_the_handler_raises_keyboard_interrupt_and_a_dropped_one_comes_back() -> None:
    with pytest.raises(KeyboardInterrupt, match="signal 2"):
        cancel.interrupt_handler(signal.SIGINT, None)
    cancel.interrupt_handled()
    _dropped(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        cancel.raise_dropped_interrupt()
    with pytest.raises(KeyboardInterrupt):  # again, until someone handles it
        cancel.raise_dropped_interrupt()
    cancel.interrupt_handled()
    cancel.raise_dropped_interrupt()


def test_the_cli_notes_ctrl_c_for_the_command_and_restores_the_handler() -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with _ctrl_c_noted():
        assert signal.getsignal(signal.SIGINT) is cancel.interrupt_handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_ctrl_c_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a shell's background job
    try:
        with _ctrl_c_noted():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_off_the_main_thread_no_handler_is_touched() -> None:
    seen: list[object] = []

    def run() -> None:
        with _ctrl_c_noted():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]


def test_a_command_whose_interrupt_was_dropped_ends_as_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command's own loop checks between steps: exit 130 and "interrupted", the note forgotten."""
    import mlx_audio_coreml.cli as cli

    steps: list[int] = []

    def command(_args: object) -> int:
        for step in range(5):
            cancel.raise_dropped_interrupt()
            steps.append(step)
            if step == 1:
                signal.raise_signal(signal.SIGINT)  # the handler main installed raises here
        return 0

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(cli, "_mlx_problem", lambda: None)
    real_parse = parser.parse_args
    monkeypatch.setattr(parser, "parse_args", lambda argv: _with_func(real_parse(argv), command))
    assert main(["info"]) == 130
    assert steps == [0, 1]
    assert "interrupted" in capsys.readouterr().err
    cancel.raise_dropped_interrupt()  # handled: nothing left noted


def _with_func(args: object, func: object) -> object:
    args.func = func  # type: ignore[attr-defined]
    return args


def test_a_dropped_interrupt_in_the_last_steps_is_not_lost() -> None:
    """Dropped (not raised) in a step: the next check raises it, so the command does not run on."""
    seen = []
    with _ctrl_c_noted(), pytest.raises(KeyboardInterrupt):
        for step in range(5):
            cancel.raise_dropped_interrupt()
            seen.append(step)
            if step == 2:
                _dropped(signal.SIGINT)
    assert seen == [0, 1, 2]
