"""The host sampler reads this machine through psutil."""

from pathlib import Path

import psutil

from app.telemetry.host import HostSampler


def test_host_readings_are_this_machines(tmp_path: Path) -> None:
    sampler = HostSampler([str(tmp_path), str(tmp_path / "gone")])
    reading = sampler.sample()
    host = reading.host
    assert reading.status.available
    assert host is not None
    assert host.ram_total_mib * 1024 * 1024 == psutil.virtual_memory().total
    assert 0 < host.ram_used_mib < host.ram_total_mib
    assert len(host.cpu_pct) == psutil.cpu_count()
    assert all(0 <= v <= 100 for v in host.cpu_pct)
    (disk,) = host.disks  # the missing folder is left out, not an error
    assert disk.path == str(tmp_path)
    assert 0 < disk.free_mib <= disk.total_mib
