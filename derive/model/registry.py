"""The registry: every fact about an activation or a loss, in its entry (expression, derivative, names, ranges, pairings)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property, partial
from typing import Any, Callable, NamedTuple, Sequence

import mpmath
import sympy as sp
from sympy import Expr, Rational


class Sigmoid(sp.Function):
    """σ(z) = 1/(1 + e^(−z)), kept as one function so formulas read σ(z), not a fraction."""

    nargs = 1

    def fdiff(self, argindex=1):
        s = Sigmoid(self.args[0])
        return s * (1 - s)

    @classmethod
    def eval(cls, z):
        if z.is_zero:
            return Rational(1, 2)
        return None

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return 1 / (1 + sp.exp(-z))

    def _eval_evalf(self, prec):
        return (1 / (1 + sp.exp(-self.args[0])))._eval_evalf(prec)

    def _eval_is_real(self):
        return self.args[0].is_real


class ReLU(sp.Function):
    """max(0, z), with the derivative taken as 0 at z = 0 (the contract's choice)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return sp.Heaviside(self.args[0], 0)

    @classmethod
    def eval(cls, z):
        if z.is_number and z.is_comparable:
            return z if z > 0 else sp.S.Zero
        return None

    def _eval_is_real(self):
        return self.args[0].is_real


def _evalf_with(mp: Callable[..., Any], args: Sequence[Expr], prec: int) -> Expr | None:
    """evalf of one of our functions by its mpmath form, at ``prec`` bits plus guard bits."""
    values = [a if a.is_Number else a._eval_evalf(prec + 20) for a in args]
    if not all(v is not None and v.is_Number for v in values):      # still symbolic: not ours to evaluate
        return None
    digits = mpmath.libmp.prec_to_dps(prec + 20)
    with mpmath.workprec(prec + 20):
        result = mp(*(mpmath.mpf(sp.Float(v, digits)._mpf_) for v in values))     # 0 and 1/3 exactly as floats
    return sp.Float._new(result._mpf_, prec)


def _softplus_mp(z: Any) -> Any:
    return mpmath.log1p(mpmath.exp(z)) if z < 0 else z + mpmath.log1p(mpmath.exp(-z))


class Softplus(sp.Function):
    """ln(1 + e^z), whose derivative is σ(z)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return sp.log(1 + sp.exp(z))

    def _eval_evalf(self, prec):
        # ln(1 + e^z) as SymPy evaluates it is 0 for z below about −prec·ln 2 (1 + e^z rounds to 1); −softplus(−z)
        # is the log-sigmoid, the loss of a saturated output, so it must keep its digits
        return _evalf_with(_softplus_mp, self.args, prec)

    def _eval_is_real(self):
        return self.args[0].is_real


class LogSoftmax(sp.Function):
    """LogSoftmax(zᵢ, z₁, …, z_J) = ln aᵢ = zᵢ − ln Σⱼ e^{zⱼ}, exact for any logits (see _softmax_complements)."""

    def _eval_evalf(self, prec):
        return _evalf_with(_log_softmax_mp, self.args, prec)


# a whole layer's saturation-safe forms, given its net inputs and its activation symbols
Complements = Callable[[Sequence[Expr], Sequence[Expr]], dict[Expr, Expr]]


class TargetRange(NamedTuple):
    """Targets an exam draws for an output activation: low to high in steps (decimal strings), 0 allowed or not."""

    low: str
    high: str
    step: str
    zero: bool


class Saturation(NamedTuple):
    """Where an exam calls a unit degenerate: too saturated, too flat, at its kink, dead, or an output too close to 1."""

    limit: float | None = None          # |z| beyond this is saturated: σ(4) = 0.982, σ'(4) = 0.018; tanh(2) = 0.964
    flat_below: float | None = None     # z below this leaves f' tiny: softplus'(−4) = σ(−4) = 0.018
    kink: bool = False                  # z = 0 exactly sits on the kink, where f' is a convention
    dies: bool = False                  # z < 0 for every sample: the unit passes nothing back
    peak: float | None = None           # an output beyond this leaves nothing to learn (softmax 0.98)


def _no_complements(zs: Sequence[Expr], layer: Sequence[Expr]) -> dict[Expr, Expr]:
    return {}


def _sigmoid_double(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)                     # never exp of a large positive number: no overflow
    return e / (1.0 + e)


def _softplus_double(z: float) -> float:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def _log_softmax_in(lib: Any) -> Callable[..., Any]:
    """zᵢ − LSE(z) as (zᵢ − top) − log1p(Σ_{j≠top} e^{zⱼ−top}) in ``lib`` (math or mpmath: both have exp,
    fsum, log1p): the largest unit's own logarithm is then −log1p(tiny), not top − (top + tiny) = 0, and no
    exponential overflows."""
    def log_softmax(z: Any, *zs: Any) -> Any:
        top = max(range(len(zs)), key=zs.__getitem__)
        rest = lib.fsum(lib.exp(v - zs[top]) for j, v in enumerate(zs) if j != top)
        return (z - zs[top]) - lib.log1p(rest)
    return log_softmax


_log_softmax_double, _log_softmax_mp = _log_softmax_in(math), _log_softmax_in(mpmath)


@dataclass(frozen=True)
class Numeric:
    """One of our SymPy functions computed outside SymPy: in doubles (never overflowing) and in mpmath."""

    double: Callable[..., float]
    mp: Callable[..., Any]


# by the SymPy function's name, as lambdify and the tape's printers call it
NUMERIC: dict[str, Numeric] = {
    "Sigmoid": Numeric(_sigmoid_double, lambda z: 1 / (1 + mpmath.exp(-z))),
    "Softplus": Numeric(_softplus_double, _softplus_mp),
    "ReLU": Numeric(lambda z: max(0.0, z), lambda z: z if z > 0 else 0),     # the exact 0, as SymPy's ReLU gives
    "LogSoftmax": Numeric(_log_softmax_double, _log_softmax_mp),
}


# beyond |z| = 10⁴ a sigmoid is its limit to any precision a check needs, and e^(−z) is not worth computing
_WIDE_LIMIT = 10_000


def _sigmoid_wide(ctx: Any, z: Any) -> Any:
    if abs(z) > _WIDE_LIMIT:
        return ctx.mpf(1 if ctx.re(z) > 0 else 0)
    return 1 / (1 + ctx.exp(-z))


def _relu_wide(ctx: Any, z: Any) -> Any:
    return z if ctx.re(z) > 0 else ctx.mpf(0)


def _softplus_wide(ctx: Any, z: Any) -> Any:
    return ctx.log(1 + ctx.exp(z)) if ctx.re(z) < 100 else z      # ln(1 + e^z) = z to 40 digits from z ≈ 92


def wide_forms(ctx: Any) -> dict[type, Callable[[Any], Any]]:
    """Our one-argument functions in the mpmath context ``ctx``, for real or complex arguments (the checker's
    random points), by their SymPy class; a non-finite result is the caller's to refuse."""
    return {Sigmoid: partial(_sigmoid_wide, ctx), ReLU: partial(_relu_wide, ctx),
            Softplus: partial(_softplus_wide, ctx)}


class Slip(NamedTuple):
    """A typical wrong way to write f′: the factor written instead, in z and a, and the reason in words
    ({a}: the unit's activation, {what}: the true factor)."""

    factor: Callable[[Expr, Expr], Expr]
    reason: str


class Miswriting(NamedTuple):
    """A typical wrong way to write a = f(z): the mistake's key, the reason in words, and the wrong f."""

    key: str
    reason: str
    f: Callable[[Expr], Expr]


# a wrong f found inside a claim's node: (key, reason, the node with f written right), or None; ``show`` prints
Repair = Callable[[Expr, Callable[[Expr], str]], tuple[str, str, Expr] | None]


def _sigmoid_text(u: str) -> str:
    return f"sigmoid({u}) = 1/(1 + exp(-{u}))"


def _sigmoid_repair(e: Expr, show: Callable[[Expr], str]) -> tuple[str, str, Expr] | None:
    """exp(u)/(1 + exp(−u)) or 1/(1 + exp(u)) written for σ(u): the reason, and the node with σ(u) in its place."""
    if e.is_Mul:
        for f in e.args:
            target = (1 + sp.exp(-f.args[0])) ** -1 if isinstance(f, sp.exp) else None
            if target is not None and target in e.args:
                rest = list(e.args)
                rest.remove(f)
                rest.remove(target)
                u = show(f.args[0])
                return ("wrong_sigmoid", f"exp({u})/(1 + exp(-{u})) is not the sigmoid: {_sigmoid_text(u)}",
                        sp.Mul(*rest) * Sigmoid(f.args[0]))
    if e.is_Pow and e.exp == -1 and e.base.is_Add and len(e.base.args) == 2 and sp.S.One in e.base.args:
        other = next(a for a in e.base.args if a != 1)
        if isinstance(other, sp.exp) and not other.args[0].could_extract_minus_sign():
            return ("wrong_sigmoid", f"the sigmoid has a minus sign in the exponent: {_sigmoid_text(show(other.args[0]))}",
                    Sigmoid(other.args[0]))
    return None


_SIGMOID_MISWRITTEN = (
    Miswriting("wrong_sigmoid", "the sigmoid is 1/(1 + exp(-z)), not exp(z)/(1 + exp(-z))",
               lambda z: sp.exp(z) / (1 + sp.exp(-z))),
    Miswriting("wrong_sigmoid", "the sigmoid has a minus sign in the exponent: 1/(1 + exp(-z))",
               lambda z: 1 / (1 + sp.exp(z))),
)


@dataclass(frozen=True)
class Activation:
    """One activation: f(z) and f'(z) written with the unit's own z and a = f(z), and what follows from it.

    Writing f' in terms of a (σ' = a(1 − a), tanh' = 1 − a²) is how hand derivations read
    and lets the evaluator reuse the forward values.
    """

    name: str
    latex: str                                  # the function's printed name, e.g. \sigma
    f: Callable[[Expr], Expr]
    df: Callable[[Expr, Expr], Expr]            # f'(z) expressed in z and a
    df_latex: str                               # f'(z) in words of LaTeX, for the notation table
    elementwise: bool = True                    # False: f acts on the whole layer (softmax), see ``layer``
    output_only: bool = False                   # allowed on the output layer only
    losses: tuple[str, ...] = ()                # the only losses it may feed (none: any that accepts it)
    positive: bool = False                      # a > 0 for every z
    bounded: bool = False                       # |a| ≤ 1 for every z
    # the saturation-safe forms of 1 − a, ln a, ln(1 − a), 1 − a² in z (``others``: the layer's other units)
    complements: Complements = _no_complements
    written: Callable[[Expr], Expr] | None = None   # a = f(z) as a document writes it, when not f(z) itself
    exp_form: bool = False                      # a document also writes f(z) with exponentials
    df_in_a: bool = False                       # f'(z) is written in a (σ' = a(1 − a)): a document shows both,
                                                # and taking it at a instead of z is a typical mistake
    word: str = ""                              # the function in a sentence: σ, tanh, ReLU ("σ′ left out")
    definition: Callable[[str], str] | None = None  # f(z) = … in LaTeX for an exam sheet, given the slope's LaTeX
    plain_definition: Callable[[str], str] | None = None  # the same as plain text (Blackboard), given the slope's
    double: Callable[[float], float] = float    # f in doubles, never overflowing (elementwise ones)
    targets: TargetRange | None = TargetRange("-1", "1", "0.1", True)   # None: one-hot rows
    saturation: Saturation = Saturation()
    spellings: tuple[str, ...] = ()             # how a claim calls it, NAME(z) and NAME'(z); none: it cannot
    max_form: bool = False                      # max(0, z) in a claim is this function
    sums_to_one: bool = False                   # the layer's outputs sum to 1 for every z (a shared bias has ∂E/∂b = 0)
    # the checker's typical mistakes and the exam's distractors about this activation
    confusable: bool = False                    # one a student mixes up with another (σ, tanh, ReLU: f or f′ swapped)
    slips: tuple[Slip, ...] = ()                # f′ written with a piece missing or misplaced (σ′ without its a, tanh′ as (1 − a)²)
    misplaced: bool = False                     # f′ is smooth in z: a for f′, f′ taken at a, z written for a are typical
    miswritten: tuple[Miswriting, ...] = ()     # f itself written wrong
    repair: Repair | None = None                # finds such a wrong f inside a claim

    def layer(self, zs: Sequence[Expr]) -> list[Expr]:
        """The activations of a whole layer of net inputs."""
        return [self.f(z) for z in zs] if self.elementwise else softmax(zs)

    def layer_double(self, zs: Sequence[float]) -> list[float]:
        """The activations of a whole layer in doubles (softmax shifted by its largest input: no overflow)."""
        if self.elementwise:
            return [self.double(z) for z in zs]
        top = max(zs)
        exps = [math.exp(z - top) for z in zs]
        return [e / sum(exps) for e in exps]

    @cached_property        # asked for every edge of every typical mistake of an exam: derived once per entry
    def df_factor(self) -> bool:
        """Whether f' is a factor of its own in a chain a student writes (not for a linear unit or a softmax)."""
        z, a = sp.symbols("z a")
        return self.elementwise and self.df(z, a) != 1

    @cached_property
    def piecewise(self) -> bool:
        """Whether f′ changes its formula at z = 0 (ReLU, leaky ReLU, ELU): a claim is tried at more points."""
        z, a = sp.symbols("z a")
        return self.df(z, a).has(sp.Piecewise, sp.Heaviside)

    @cached_property
    def identity(self) -> bool:
        """Whether f is the identity (a linear unit: a = z)."""
        z = sp.Symbol("z")
        return self.f(z) == z

    def partial(self, a_i: Expr, a_j: Expr, z_j: Expr, same: bool) -> Expr:
        """∂a_i/∂z_j: f'(z_i) on the diagonal for an elementwise f, the softmax Jacobian otherwise."""
        if self.elementwise:
            return self.df(z_j, a_i) if same else sp.S.Zero
        return softmax_jacobian(a_i, a_j, same)


def _sigmoid_complements(zs: Sequence[Expr], layer: Sequence[Expr]) -> dict[Expr, Expr]:
    out: dict[Expr, Expr] = {}
    for z, a in zip(zs, layer):
        # unevaluated: each is itself for a symbol z (σ(−z) is ½ only at z = 0), and asking SymPy's assumptions
        # to find that costs more than the rest of the document's safe forms
        out |= {sp.log(a, evaluate=False): -Softplus(-z, evaluate=False),
                sp.log(1 - a, evaluate=False): -Softplus(z, evaluate=False), 1 - a: Sigmoid(-z, evaluate=False)}
    return out


def _tanh_complements(zs: Sequence[Expr], layer: Sequence[Expr]) -> dict[Expr, Expr]:
    return {1 - a**2: 1 / sp.cosh(z) ** 2 for z, a in zip(zs, layer)}


def _softmax_complements(zs: Sequence[Expr], layer: Sequence[Expr]) -> dict[Expr, Expr]:
    """The log-softmax: aᵢ = e^{ln aᵢ}, ln aᵢ = zᵢ − LSE(z) and 1 − aᵢ = Σ_{j≠i} aⱼ, exact for any logits.

    e^{zᵢ}/Σ e^{zⱼ} overflows from z ≈ 709 on, and ln aᵢ taken of a rounded aᵢ (or as ln(1 − Σ others))
    loses every digit once aᵢ is tiny: the cross-entropy of a confidently wrong output.
    """
    if len(zs) == 1:                    # a one-unit softmax is the constant 1 and needs nothing
        return {}
    out: dict[Expr, Expr] = {}
    for z, a, quotient in zip(zs, layer, softmax(zs)):
        log_a = LogSoftmax(z, *zs)
        out |= {quotient: sp.exp(log_a), sp.log(a): log_a, 1 - a: sp.Add(*(b for b in layer if b != a))}
    return out


def leaky_relu(slope: Rational) -> Activation:
    """The leaky ReLU with the given slope for z ≤ 0 (derivative `slope` at 0, as for ReLU)."""
    return Activation(
        "leaky_relu", r"\operatorname{LReLU}",
        lambda z: sp.Piecewise((z, z > 0), (slope * z, True)),
        lambda z, a: sp.Piecewise((1, z > 0), (slope, True)),
        rf"1 \text{{ if }} z>0 \text{{, else }} {sp.latex(slope)}",
        written=lambda z: sp.Function("LReLU")(z), word="leaky ReLU",
        definition=lambda c: rf"\operatorname{{LReLU}}(z) = z \text{{ for }} z > 0 \text{{, else }} {c}\,z",
        plain_definition=lambda c: f"leaky_relu(z) = z for z > 0, else {c}*z",
        double=lambda z: z if z > 0 else float(slope) * z, saturation=Saturation(kink=True),
        spellings=("leaky_relu", "LReLU"),
    )


def piecewise_name(slope: Expr) -> str:
    """The claim spelling of a piecewise-linear unit with this slope for z ≤ 0: the leaky ReLU, or ReLU at 0."""
    return "leaky_relu" if slope != 0 else "relu"


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("linear", r"\operatorname{id}", lambda z: z, lambda z, a: sp.S.One, "1", written=lambda z: z,
                   double=lambda z: z),
        Activation("sigmoid", r"\sigma", Sigmoid, lambda z, a: a * (1 - a), r"\sigma(z)\,(1-\sigma(z))",
                   positive=True, bounded=True, complements=_sigmoid_complements, exp_form=True, df_in_a=True,
                   word="σ", definition=lambda c: r"\sigma(z) = \frac{1}{1 + e^{-z}}", double=_sigmoid_double,
                   plain_definition=lambda c: "sigmoid(z) = 1/(1 + exp(-z))",
                   spellings=("sigmoid", "sigma"),
                   targets=TargetRange("0.1", "0.9", "0.1", True), saturation=Saturation(limit=4.0),
                   confusable=True, slips=(Slip(lambda z, a: 1 - a, "the factor {a} of {what} is missing"),
                                           Slip(lambda z, a: a * (1 + a), "the sign: {what}, not {a}*(1 + {a})")),
                   misplaced=True, miswritten=_SIGMOID_MISWRITTEN, repair=_sigmoid_repair),
        Activation("tanh", r"\tanh", sp.tanh, lambda z, a: 1 - a**2, r"1-\tanh^2(z)",
                   bounded=True, complements=_tanh_complements, df_in_a=True, word="tanh",
                   definition=lambda c: r"\tanh(z) = \frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}", double=math.tanh,
                   plain_definition=lambda c: "tanh(z) = (exp(z) - exp(-z))/(exp(z) + exp(-z))",
                   spellings=("tanh",),
                   targets=TargetRange("-0.9", "0.9", "0.1", True), saturation=Saturation(limit=2.0),
                   confusable=True, slips=(Slip(lambda z, a: 1 - a, "the square is missing: {what}, not 1 - {a}"),
                                           Slip(lambda z, a: (1 - a) ** 2, "the square is on {a} alone: {what}, not "
                                                                           "(1 - {a})^2")),
                   misplaced=True),
        Activation("relu", r"\operatorname{ReLU}", ReLU, lambda z, a: sp.Heaviside(z, 0),
                   r"1 \text{ if } z>0 \text{, else } 0", word="ReLU",
                   definition=lambda c: r"\operatorname{ReLU}(z) = \max(0, z)", double=lambda z: max(z, 0.0),
                   plain_definition=lambda c: "relu(z) = max(0, z)",
                   spellings=("relu", "ReLU"), max_form=True, confusable=True,
                   targets=TargetRange("0.1", "1", "0.1", False), saturation=Saturation(kink=True, dies=True)),
        leaky_relu(Rational(1, 100)),
        Activation("softplus", r"\operatorname{softplus}", Softplus, lambda z, a: Sigmoid(z), r"\sigma(z)",
                   positive=True, exp_form=True, word="softplus",
                   definition=lambda c: r"\operatorname{softplus}(z) = \ln\left(1 + e^{z}\right)",
                   plain_definition=lambda c: "softplus(z) = ln(1 + exp(z))",
                   double=_softplus_double, targets=TargetRange("0.1", "1", "0.1", False), spellings=("softplus",),
                   saturation=Saturation(flat_below=-4.0), misplaced=True),
        # ELU with α = 1: smooth at 0 (both pieces have slope 1); f′ = e^z below 0, written in z as PyTorch takes
        # it (a + 1 from a rounded a = e^z − 1 would be 0 for a saturated unit)
        Activation("elu", r"\operatorname{ELU}", lambda z: sp.Piecewise((z, z > 0), (sp.exp(z) - 1, True)),
                   lambda z, a: sp.Piecewise((1, z > 0), (sp.exp(z), True)), r"1 \text{ if } z>0 \text{, else } e^{z}",
                   written=lambda z: sp.Function("ELU")(z), word="ELU",
                   definition=lambda c: r"\operatorname{ELU}(z) = z \text{ for } z > 0 \text{, else } e^{z} - 1",
                   plain_definition=lambda c: "elu(z) = z for z > 0, else exp(z) - 1",
                   double=lambda z: z if z > 0 else math.expm1(z), spellings=("elu", "ELU"),
                   targets=TargetRange("-0.5", "1", "0.1", True), saturation=Saturation(flat_below=-4.0)),
        # softmax couples the units of a layer: f and df act on the whole layer (see Activation.layer)
        Activation("softmax", r"\operatorname{softmax}", sp.exp, lambda z, a: a, r"a_i(\delta_{ij}-a_j)",
                   elementwise=False, output_only=True, losses=("cross_entropy", "mse", "half_sse", "sse", "quadratic"), positive=True, bounded=True,
                   complements=_softmax_complements, targets=None, saturation=Saturation(peak=0.98), sums_to_one=True),
    )
}
# the activations that are one SymPy function (σ, tanh, ReLU, softplus), by that function, for the printers
# (softmax's f is exp applied to a whole layer, so exp itself stays exp)
_BY_FUNCTION: dict[type, Activation] = {a.f: a for a in ACTIVATIONS.values() if isinstance(a.f, type) and a.elementwise}


def confusable() -> list[Activation]:
    """The activations a student mixes up with one another, in the registry's order."""
    return [a for a in ACTIVATIONS.values() if a.confusable]


def piecewise_entry(e: Expr, u: Expr) -> tuple[Activation, bool] | None:
    """The activation whose f(u) (False) or f′(u) (True) the Piecewise ``e`` is, for those defined in pieces
    whose f′ is written in z alone (ELU); None for any other."""
    for entry in ACTIVATIONS.values():
        if entry.elementwise and isinstance(entry.f(u), sp.Piecewise):
            if e == entry.f(u):
                return entry, False
            if e == entry.df(u, sp.Dummy()):
                return entry, True
    return None


def function_entry(function: type) -> Activation | None:
    """The activation whose f is this SymPy function (Sigmoid, tanh, ReLU, Softplus), or None."""
    return _BY_FUNCTION.get(function)


PARAMETRIZED: dict[str, Callable[[Rational], Activation]] = {"leaky_relu": leaky_relu}
DEFAULT_ACTIVATION = "sigmoid"


def claim_spellings() -> dict[str, str]:
    """Every way a claim may call an activation, to the activation's name: sigma → sigmoid, ReLU → relu, …"""
    return {spelling: a.name for a in ACTIVATIONS.values() for spelling in a.spellings}


def latex_commands() -> dict[str, str]:
    """The activations printed as one LaTeX command (\\sigma, \\tanh), by the command, to a claim spelling."""
    return {a.latex[1:]: a.latex[1:] for a in ACTIVATIONS.values()
            if a.latex[1:].isalpha() and a.latex[1:] in a.spellings}


def max_activation() -> Activation:
    """The activation a claim writes as max(0, z) (ReLU)."""
    return next(a for a in ACTIVATIONS.values() if a.max_form)


def takes_slope(name: str) -> bool:
    """Whether activation ``name`` takes the spec's [network].slope."""
    return name in PARAMETRIZED


def activation(name: str, slope: Rational | None = None) -> Activation:
    """The entry of activation ``name``, with the spec's slope where it takes one (the leaky ReLU)."""
    if slope is not None and name in PARAMETRIZED:
        return PARAMETRIZED[name](slope)
    return ACTIVATIONS[name]


def softmax(zs: Sequence[Expr]) -> list[Expr]:
    """a_i = e^{z_i} / Σ_j e^{z_j}."""
    total = sp.Add(*(sp.exp(z) for z in zs))
    return [sp.exp(z) / total for z in zs]


def softmax_jacobian(a_i: Expr, a_j: Expr, same: bool) -> Expr:
    """∂a_i/∂z_j = a_i (δ_ij − a_j)."""
    return a_i * (1 - a_j) if same else -a_i * a_j


@dataclass(frozen=True)
class Loss:
    """One loss: the contribution of one sample, given its outputs o and targets y.

    ``scale(N, J)`` is the constant in front of the double sum, ``term(o, y)`` the summand, so
    E = scale · Σₙ Σⱼ term(oₙⱼ, yₙⱼ) exactly as in DESIGN.md.
    """

    name: str
    scale: Callable[[Expr, Expr], Expr]         # exact for whole numbers; also takes a symbolic N
    term: Callable[[Expr, Expr], Expr]
    scale_latex: Callable[[int, int], str]      # the constant as printed in the general formula
    term_latex: str                             # the summand in y and o
    outputs: tuple[str, ...] = ()               # the only output activations it accepts (none: any)
    probabilities: bool = False                 # outputs and targets are probabilities in [0, 1]
    square: bool = False                        # a sum of squares (y − o)², with its own constant in front
    cancels: tuple[str, ...] = ()               # output activations whose derivative cancels the loss's: δ = o − y
    plain_scale: str = ""                       # the constant in front as a sentence writes it: 1/(N·J)·
    plain_term: str = ""                        # the sum as a sentence writes it: Σ(y - o)²

    def summed(self) -> "Loss":
        """The same loss summed over the samples and outputs instead of averaged ([network] reduction =
        "sum"): the constant without its 1/N and 1/J (mse → Σ(y − o)², bce → −Σ[…])."""
        constant = self.scale(1, 1)
        text = "" if constant == 1 else "-" if constant == -1 else sp.latex(constant)
        plain = "" if constant == 1 else "-" if constant == -1 else "½·"
        return replace(self, scale=lambda n, j: constant, scale_latex=lambda n, j: text, plain_scale=plain)

    @property
    def plain_formula(self) -> str:
        """The loss in a sentence: ½·Σ(y - o)², -1/N·Σ y·ln(o)."""
        return self.plain_scale + self.plain_term

    @property
    def averages(self) -> bool:
        """Whether the constant in front divides by the number of samples N (a mean over the batch)."""
        return self.scale(2, 1) != self.scale(1, 1)

    @property
    def averages_outputs(self) -> bool:
        """Whether the constant in front divides by the number of outputs J (a mean over the outputs)."""
        return self.scale(1, 2) != self.scale(1, 1)

    @property
    def halved(self) -> bool:
        """Whether the constant carries the ½ that cancels the 2 of the square's derivative."""
        return self.square and self.scale(1, 1) == Rational(1, 2)


_SQUARES = "Σ(y - o)²"
LOSSES: dict[str, Loss] = {
    l.name: l
    for l in (
        Loss("half_sse", lambda n, j: Rational(1, 2), lambda o, y: (y - o) ** 2,
             lambda n, j: r"\frac{1}{2}", "(y_{nj} - o_{nj})^2", square=True,
             plain_scale="½·", plain_term=_SQUARES),
        Loss("sse", lambda n, j: sp.S.One, lambda o, y: (y - o) ** 2,
             lambda n, j: "", "(y_{nj} - o_{nj})^2", square=True, plain_term=_SQUARES),
        Loss("mse", lambda n, j: sp.S.One / (n * j), lambda o, y: (y - o) ** 2,
             lambda n, j: r"\frac{1}{N J}", "(y_{nj} - o_{nj})^2", square=True,
             plain_scale="1/(N·J)·", plain_term=_SQUARES),
        Loss("quadratic", lambda n, j: sp.S.One / (2 * n), lambda o, y: (y - o) ** 2,
             lambda n, j: r"\frac{1}{2N}", "(y_{nj} - o_{nj})^2", square=True,
             plain_scale="1/(2N)·", plain_term=_SQUARES),
        Loss("bce", lambda n, j: -sp.S.One / (n * j), lambda o, y: y * sp.log(o) + (1 - y) * sp.log(1 - o),
             lambda n, j: r"-\frac{1}{N J}", r"\left[y_{nj} \ln o_{nj} + (1 - y_{nj}) \ln(1 - o_{nj})\right]",
             outputs=("sigmoid",), probabilities=True, cancels=("sigmoid",),
             plain_scale="-1/(N·J)·", plain_term="Σ[y·ln(o) + (1 - y)·ln(1 - o)]"),
        Loss("cross_entropy", lambda n, j: -sp.S.One / n, lambda o, y: y * sp.log(o),
             lambda n, j: r"-\frac{1}{N}", r"y_{nj} \ln o_{nj}", outputs=("softmax", "sigmoid"), probabilities=True,
             cancels=("softmax",), plain_scale="-1/N·", plain_term="Σ y·ln(o)"),
    )
}
DEFAULT_LOSS = "half_sse"


def pairing_problem(loss: str, output: str) -> str | None:
    """Why ``loss`` cannot follow an ``output`` activation, or None when the pair is allowed."""
    act, rule = ACTIVATIONS[output], LOSSES[loss]
    if act.losses and loss not in act.losses:
        options = act.losses[0] if len(act.losses) == 1 else f"one of {', '.join(act.losses)}"
        return f"expected {options} with a {output} output; got {loss!r}"
    if rule.outputs and output not in rule.outputs:
        return f"{loss} needs outputs in (0, 1): expected a {rule.outputs[0]} output layer; got {output!r}"
    return None
