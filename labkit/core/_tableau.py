"""The Dormand-Prince 5(4) tableau, shared by the eager solver and the compiled kernels.

J. R. Dormand and P. J. Prince, J. Comput. Appl. Math. 6, 19-26 (1980); the dense output
coefficients are Shampine's, in the form of Hairer, Norsett and Wanner's DOPRI5.
"""

from __future__ import annotations

_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_E = tuple(b5 - b4 for b5, b4 in zip(_B5, _B4, strict=True))


#: Continuous extension of order 4 (L. F. Shampine, Math. Comp. 46, 135-150 (1986)), in
#: the form of Hairer, Norsett and Wanner's DOPRI5 (dense output coefficients d_i).
_D = (-12715105075 / 11282082432, 0.0, 87487479700 / 32700410799,
      -10690763975 / 1880347072, 701980252875 / 199316789632,
      -1453857185 / 822651844, 69997945 / 29380423)
