"""Reconstruction of dynamical systems from data.

Piecewise-linear RNNs (shPLRNN, clipped shPLRNN, AL-RNN) trained by (generalized) teacher
forcing (:class:`GTFTrainer`, :func:`train_gtf`, :func:`train_gtf_ensemble`), baselines
(echo state network, SINDy, neural ODE), the data they train on
(:func:`reconstruction_data`, :meth:`ReconstructionData.from_array`) and the field's metrics
(:math:`D_{stsp}`, :math:`D_H`, prediction error, valid prediction time, and their
finite-sample floor). Every trainer runs through :func:`labkit.core.train.run`.

Privacy: modules whose names start with ``_`` are private; the public names are those
listed here (and re-exported by :mod:`labkit.dynamics`).
"""


# The public names of the sub-package (an import list alike in shape to the catalogue's,
# by design).
from labkit.dynamics.reconstruction._baselines import BaselineRow, BaselineTable, baseline_table
from labkit.dynamics.reconstruction._data import ReconstructionData, reconstruction_data
from labkit.dynamics.reconstruction._esn import EchoStateNetwork, ESNConfig, ESNResult, train_esn
from labkit.dynamics.reconstruction._gtf import GTFConfig, estimate_alpha
from labkit.dynamics.reconstruction._gtf_train import (
    GTFEnsembleResult,
    GTFResult,
    train_gtf,
    train_gtf_ensemble,
)
from labkit.dynamics.reconstruction._gtf_trainer import GTFTrainer
from labkit.dynamics.reconstruction._metrics import (
    DSRMetrics,
    MetricFloor,
    dsr_metrics,
    metric_floor,
    power_spectrum_error,
    state_space_divergence,
)
from labkit.dynamics.reconstruction._node import NODEConfig, NODEResult, train_node
from labkit.dynamics.reconstruction._plrnn import (
    ALRNN,
    AffineObservation,
    IdentityObservation,
    PeriodicOrbits,
    PiecewiseLinearRNN,
    ShallowPLRNN,
)
from labkit.dynamics.reconstruction._prediction import prediction_error, valid_prediction_time
from labkit.dynamics.reconstruction._sindy import SINDyConfig, SINDyResult, train_sindy

__all__ = ["ALRNN", "AffineObservation", "BaselineRow", "BaselineTable", "DSRMetrics", "ESNConfig", "ESNResult", "EchoStateNetwork", "GTFConfig", "GTFEnsembleResult", "GTFResult", "GTFTrainer", "IdentityObservation", "MetricFloor", "NODEConfig", "NODEResult", "PeriodicOrbits", "PiecewiseLinearRNN", "ReconstructionData", "SINDyConfig", "SINDyResult", "ShallowPLRNN", "baseline_table", "dsr_metrics", "estimate_alpha", "metric_floor", "power_spectrum_error", "prediction_error", "reconstruction_data", "state_space_divergence", "train_esn", "train_gtf", "train_gtf_ensemble", "train_node", "train_sindy", "valid_prediction_time"]
