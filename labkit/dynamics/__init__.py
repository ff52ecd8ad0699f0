"""Chaotic dynamical systems: the catalogue of flows as batched torch vector fields,
cited parameters and reference invariants, the divergence of neighbours, and the
whole catalogue's recomputed invariants table compared with dysts'; and reconstruction:
piecewise-linear RNNs (shPLRNN, AL-RNN) trained by generalized teacher forcing, with the
field's metrics (D_stsp, D_H, prediction error, Lyapunov exponents of the learned map)."""

from labkit.dynamics._catalogue import System, get_system, list_systems
from labkit.dynamics._compare import Comparison, ComparisonRow, compare_with_dysts
from labkit.dynamics._converge import (
    ConvergedRow,
    ConvergenceSettings,
    build_converged_table,
    converge_spectrum,
    converged_table,
)
from labkit.dynamics._delay import integrate_delay
from labkit.dynamics._divergence import log_separation, separation_rate
from labkit.dynamics._dsr_baselines import (
    BaselineRow,
    BaselineTable,
    EchoStateNetwork,
    ESNConfig,
    ESNResult,
    NODEConfig,
    NODEResult,
    SINDyConfig,
    SINDyResult,
    baseline_table,
    train_esn,
    train_node,
    train_sindy,
)
from labkit.dynamics._dsr_data import ReconstructionData, from_array, reconstruction_data
from labkit.dynamics._dsr_metrics import (
    DSRMetrics,
    MetricFloor,
    dsr_metrics,
    metric_floor,
    power_spectrum_error,
    prediction_error,
    state_space_divergence,
    valid_prediction_time,
)
from labkit.dynamics._gtf import GTFConfig, estimate_alpha
from labkit.dynamics._gtf_train import GTFEnsembleResult, GTFResult, train_gtf, train_gtf_ensemble
from labkit.dynamics._gtf_trainer import GTFTrainer
from labkit.dynamics._invariants import (
    OrbitDiagram,
    PoincareSection,
    correlation_dimension,
    correlation_sum,
    local_maxima,
    orbit_diagram,
    poincare_section,
    power_spectrum,
)
from labkit.dynamics._lorenz import lorenz
from labkit.dynamics._lyapunov import LyapunovResult, kaplan_yorke_dimension, lyapunov_spectrum
from labkit.dynamics._lyapunov_map import lyapunov_spectrum_map, max_lyapunov_exponent_map
from labkit.dynamics._plrnn import (
    ALRNN,
    AffineObservation,
    IdentityObservation,
    PeriodicOrbits,
    PiecewiseLinearRNN,
    ShallowPLRNN,
)
from labkit.dynamics._table import InvariantsRow, TableSettings, compute_invariants
from labkit.dynamics._table_file import InvariantsTable, build_invariants_table, invariants_table

__all__ = [
    "ConvergedRow",
    "ConvergenceSettings",
    "build_converged_table",
    "converge_spectrum",
    "converged_table",
    "ALRNN",
    "AffineObservation",
    "BaselineRow",
    "BaselineTable",
    "Comparison",
    "ComparisonRow",
    "DSRMetrics",
    "ESNConfig",
    "ESNResult",
    "EchoStateNetwork",
    "GTFConfig",
    "GTFEnsembleResult",
    "GTFResult",
    "GTFTrainer",
    "IdentityObservation",
    "InvariantsRow",
    "InvariantsTable",
    "LyapunovResult",
    "MetricFloor",
    "NODEConfig",
    "NODEResult",
    "OrbitDiagram",
    "PeriodicOrbits",
    "PiecewiseLinearRNN",
    "PoincareSection",
    "ReconstructionData",
    "SINDyConfig",
    "SINDyResult",
    "ShallowPLRNN",
    "System",
    "TableSettings",
    "baseline_table",
    "build_invariants_table",
    "compare_with_dysts",
    "compute_invariants",
    "correlation_dimension",
    "correlation_sum",
    "dsr_metrics",
    "estimate_alpha",
    "from_array",
    "get_system",
    "integrate_delay",
    "invariants_table",
    "kaplan_yorke_dimension",
    "list_systems",
    "local_maxima",
    "log_separation",
    "lorenz",
    "lyapunov_spectrum",
    "lyapunov_spectrum_map",
    "max_lyapunov_exponent_map",
    "metric_floor",
    "orbit_diagram",
    "poincare_section",
    "power_spectrum",
    "power_spectrum_error",
    "prediction_error",
    "reconstruction_data",
    "separation_rate",
    "state_space_divergence",
    "train_esn",
    "train_gtf",
    "train_gtf_ensemble",
    "train_node",
    "train_sindy",
    "valid_prediction_time",
]
