"""Output files: written whole or not at all, links followed, devices written into, the umask honoured."""
import os
import stat

import pytest

from effplan.base.errors import EffplanError
from effplan.base.files import write_atomic


def test_a_new_file_gets_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(str(tmp_path / "out.txt"), "hello\n")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").read_text() == "hello\n"
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o640  # 0666 & ~0027


def test_a_link_is_kept_and_its_target_replaced(tmp_path):
    (tmp_path / "target.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("target.txt")
    write_atomic(str(tmp_path / "link.txt"), "new")
    assert (tmp_path / "link.txt").is_symlink()
    assert (tmp_path / "target.txt").read_text() == "new"


def test_a_pipe_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, so opening for writing does not block
    try:
        write_atomic(str(fifo), "through the pipe")
        assert os.read(reader, 100) == b"through the pipe"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_full_device_is_an_error_and_stays_a_device():
    with pytest.raises(EffplanError, match="cannot write /dev/full: No space left on device"):
        write_atomic("/dev/full", "x" * 10000)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "out.txt"
    out.write_text("old")

    def fail(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(EffplanError, match="No space left on device"):
        write_atomic(str(out), "new")
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_replaced_file_keeps_its_mode(tmp_path):
    out = tmp_path / "report.json"
    out.write_text("old")
    out.chmod(0o600)
    write_atomic(str(out), "new")
    assert out.read_text() == "new" and stat.S_IMODE(out.stat().st_mode) == 0o600


# Every command that prints a report takes -o: the same text lands in the file and nothing on stdout.
REPORTS = [
    ["compare", "mobilenet-v2", "mobilenet-v1"],
    ["models"],
    ["devices", "--format", "json"],
    ["runtimes"],
    ["fit", "mobilenet-v2", "--memory", "1GiB", "--format", "csv"],
    ["search", "mobilenet-v2", "--max-macs", "400M", "--depth", "1..1.2", "--width", "1", "--resolution", "192..224:32",
     "--top", "1", "--format", "json"],
    ["search", "mobilenet-v2", "--coefficients", "--tolerance", "0.02", "--format", "csv"],
]


@pytest.mark.parametrize("args", REPORTS, ids=lambda a: " ".join(a[:2]))
def test_each_report_command_writes_its_output_file(effplan, tmp_path, args):
    shown = effplan(*args)
    out = tmp_path / "report.out"
    written = effplan(*args, "-o", str(out))
    assert shown.code == written.code == 0, written.err
    assert written.out == "" and out.read_text(encoding="utf-8") == shown.out != ""


def test_measure_writes_its_output_file(effplan, tmp_path):
    out = tmp_path / "measure.json"
    run = effplan("measure", "mobilenet-v2", "--resolution", "32", "--device", "t4", "--runs", "1", "--format", "json",
                  "-o", str(out))
    assert run.code == 0 and run.out == "", run.err
    assert out.read_text(encoding="utf-8").lstrip().startswith("{")
