"""The shared guards of issue #20: IDs read from files, bounded loads, output folders, signals."""

from __future__ import annotations

import os
import signal
import zipfile

import pytest

from sysgym.agents import runs, serialization
from sysgym.envs.registry import registered_id


@pytest.mark.parametrize("value", ["this:sysgym/Appointments-P1-v0", "sysgym/Nope-v0", "CartPole-v1",
                                   "Appointments-P1-v0", "", "x" * 500])
def test_unregistered_ids_are_refused_with_the_source_named(value):
    with pytest.raises(ValueError, match=r"^model\.pt: env_id .* is not a registered sysgym environment"):
        registered_id(value, "model.pt")


@pytest.mark.parametrize("value", [3, None, ["sysgym/ABR-v0"], b"sysgym/ABR-v0"])
def test_non_string_ids_are_refused(value):
    with pytest.raises(ValueError, match="env_id must be a string"):
        registered_id(value, "model.pt")


def test_registered_ids_pass():
    assert registered_id("sysgym/ABR-v0", "x") == "sysgym/ABR-v0"


def test_deep_json_is_a_value_error_not_a_recursion_error():
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ValueError, match="tree.json: JSON nested 100000 levels deep"):
        serialization.load_json_text(text, "tree.json")
    with pytest.raises(ValueError, match="nested"):
        serialization.loads(text)


def test_malformed_json_names_line_and_column():
    with pytest.raises(ValueError, match=r"f\.json: malformed JSON at line 2, column 1"):
        serialization.load_json_text('{"a": 1,\n}', "f.json")


def test_zip_bomb_is_refused_before_inflating(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "MAX_INFLATED_BYTES", 2**20)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/data.pkl", b"\0" * (3 * 2**20))
    assert bomb.stat().st_size < 2**20 // 10  # small on disk
    with pytest.raises(ValueError, match=r"bomb\.pt: inflates to 3 MiB"):
        serialization.load_torch_file(bomb, "sysgym PPO checkpoint")


def test_large_file_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "MAX_FILE_BYTES", 1000)
    big = tmp_path / "big.pt"
    big.write_bytes(b"\1" * 2000)
    with pytest.raises(ValueError, match="too large"):
        serialization.load_torch_file(big, "sysgym PPO checkpoint")


def test_text_file_as_torch_file_is_one_value_error(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n")
    with pytest.raises(ValueError, match="notes.txt: not a readable sysgym PPO checkpoint"):
        serialization.load_torch_file(notes, "sysgym PPO checkpoint")


@pytest.mark.parametrize("data", [{"type": "Discrete", "n": 2**48, "start": 0},
                                  {"type": "Discrete", "n": 0, "start": 0},
                                  {"type": "Box", "shape": [100_000, 100_000], "dtype": "<f4", "low": [], "high": []}])
def test_huge_spaces_are_refused_before_allocating(data):
    with pytest.raises(ValueError, match="malformed space description"):
        serialization.space_from_data(data)


def test_non_finite_weights_are_named():
    torch = pytest.importorskip("torch")
    payload = {"model": {"fc.weight": torch.tensor([1.0, float("nan")]), "fc.bias": torch.zeros(2)}}
    with pytest.raises(ValueError, match=r"m\.pt: .* non-finite .* model\.fc\.weight"):
        serialization.check_finite_tensors(payload, "m.pt", "sysgym PPO checkpoint")
    serialization.check_finite_tensors({"model": {"w": torch.ones(3)}}, "m.pt", "checkpoint")


def test_parameter_count_bound():
    serialization.check_parameter_count(serialization.MAX_PARAMETERS, "x")
    with pytest.raises(ValueError, match="lower hidden_sizes"):
        serialization.check_parameter_count(40000 * 40000, "hidden_sizes=(40000, 40000)")


def test_out_dir_refuses_a_non_empty_folder_unless_forced(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(ValueError, match="folder is not empty; pass --force"):
        runs.prepare_out_dir(tmp_path)
    assert runs.prepare_out_dir(tmp_path, force=True) == tmp_path
    assert runs.prepare_out_dir(tmp_path, resume=True) == tmp_path
    assert (tmp_path / "old.txt").read_text() == "x"


def test_out_dir_that_is_a_file_or_unwritable_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        runs.prepare_out_dir(f)
    with pytest.raises(ValueError, match="cannot write there"):
        runs.prepare_out_dir(f / "sub")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ValueError, match="cannot write there"):
            runs.prepare_out_dir(locked / "out")


def test_empty_or_new_out_dir_is_created_and_left_empty(tmp_path):
    out = runs.prepare_out_dir(tmp_path / "a" / "b")
    assert out.is_dir() and list(out.iterdir()) == []


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "results.json"
    runs.atomic_write_text(target, "old")

    def fail(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs.atomic_replace(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_sigterm_becomes_keyboard_interrupt_inside_the_block_only():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        with runs.stop_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000):  # the handler runs between bytecodes
                pass
    assert signal.getsignal(signal.SIGTERM) == before


def test_atomic_writes_get_the_permissions_a_plain_open_gives(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = runs.atomic_write_text(tmp_path / "atomic.txt", "x")
    assert (atomic.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)


def test_a_stop_signal_is_recorded_so_loops_can_check_it_even_if_the_exception_was_swallowed():
    with runs.stop_signals() as stop:
        assert not stop.requested
        stop.check()  # nothing to raise yet
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):
                pass
        except KeyboardInterrupt:
            pass  # as a weakref callback or __del__ would swallow it
        assert stop.requested and stop.signal == "SIGINT"
        with pytest.raises(KeyboardInterrupt, match="SIGINT"):
            stop.check()


def test_a_deferred_block_finishes_on_the_first_stop_signal_and_stops_on_the_second(capsys):
    def spin():
        for _ in range(10_000):  # the handler runs between bytecodes
            pass

    with runs.stop_signals() as stop:
        with stop.deferred("finishing the unit of work"):
            os.kill(os.getpid(), signal.SIGTERM)
            spin()
            finished = True  # the first signal did not interrupt the block
        assert finished and stop.requested and stop.signal == "SIGTERM"
        assert "finishing the unit of work" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt, match="SIGINT"):
            with stop.deferred("not printed: a signal arrived already"):
                os.kill(os.getpid(), signal.SIGINT)
                spin()
        assert "not printed" not in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):  # outside the block: at once
            os.kill(os.getpid(), signal.SIGTERM)
            spin()
