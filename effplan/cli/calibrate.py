"""`effplan calibrate --from FILE`: fit a device's named efficiencies to measured throughput (plan/calibrate.py)."""
from __future__ import annotations

import click


def calibrate_from(source: str, device: str, names: str, name: str | None, output: str | None) -> None:
    import tomllib

    from .. import resolve
    from ..base.files import write_atomic
    from ..plan.calibrate import CalibrationError, case_of, check_names, device_text, fit, read_measurements
    from ..plan.hardware import device_from_table, load_device

    if device is None:
        raise CalibrationError("--from needs --device: the device file whose efficiencies are fitted")
    found = load_device(device)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    check_names(wanted)
    measurements = read_measurements(source)
    cases = [case_of(m, found, resolve) for m in measurements]
    result = fit(cases, found, wanted)
    name = name or f"{found.name}-calibrated"
    text = device_text(found, result, source, name)
    device_from_table(tomllib.loads(text), "calibration")  # loads as any catalog file does
    path = output or f"{name}.toml"
    write_atomic(path, text)
    figures = ", ".join(f"{k} {v:.3g}" for k, v in result.values.items())
    click.echo(f"wrote {path}: {figures} from {result.rows} measurements; {result.folds}-fold cross-validated "
               f"estimate/measured median {result.cv_error[0]:.3f}x, worst {result.cv_error[1]:.3f}x")
