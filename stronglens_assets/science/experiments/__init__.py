"""The D06 injection-recovery experiments (the published protocol, PROTOCOL.md), as the
pipeline reads: pure NumPy / pandas / scikit-learn, wired to storage by ``assets/d06.py``.

* :mod:`.config`: ``configs/d06.yaml`` and the seeded random streams;
* :mod:`.hosts`: validation-split non-lenses, their PSF FWHM and 5-sigma depth, grid bins;
* :mod:`.injections`: draw, render (SIE + shear), add to hosts, retry failed hosts;
* :mod:`.grid`: theta_E x PSF x depth cells and the published selection-function table;
* :mod:`.bright_arcs`: the paired bright-arc design, per-bin rates, McNemar tests;
* :mod:`.probe`: linear probe, permutation test, bootstrap, brightness-only baseline, Fréchet;
* :mod:`.scoring`: thresholds, real-lens scoring, paired score changes.
"""
