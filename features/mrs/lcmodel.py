"""Read LCModel's outputs: ``.table``, ``.csv`` and ``.coord`` files, found in a
subject's folder however LCModel named them.

The ``.table`` file holds a ``$$CONC`` section (concentration, %SD, ratio to a
reference such as Cr+PCr, metabolite name) and a ``$$MISC`` section with the
linewidth (FWHM) and signal-to-noise ratio. LCModel writes fixed-width Fortran
fields that can touch each other (``999%``, ``5.5E-02``), so rows are parsed with a
regular expression rather than by splitting on spaces. Files are decoded leniently
because titles often carry non-ASCII bytes. The metabolite features built from a
result are in :mod:`features.mrs.metabolites`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.errors import CohortFormatError

__all__ = [
    "LCMODEL_OUTPUTS",
    "LCModelResult",
    "find_lcmodel_output",
    "read_lcmodel_csv",
    "read_lcmodel_table",
]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[Ee][-+]\d{2})?"
_CONC_ROW = re.compile(
    rf"^\s*(?P<conc>{_NUMBER})\s*(?P<sd>\d+)%\s*(?P<ratio>{_NUMBER})\s+(?P<name>\S+)\s*$"
)
# ``.table``: "$$CONC 38 lines in following concentration table = NCONC+1";
# ``.coord``: the same line without "$$CONC".
_CONC_HEADER = re.compile(
    r"^\s*(?:\$\$CONC\s+)?(?P<n>\d+)\s+lines in following concentration table"
)
_DIAG_HEADER = re.compile(r"^\s*(?:\$\$DIAG\s+)?\d+\s+lines in following diagnostic")
_FATAL = re.compile(r"\bFATAL\b|\bfatal\b")
_RATIO_HEADER = re.compile(r"%SD\s+/(?P<ref>\S+)")
_FWHM = re.compile(r"FWHM\s*=\s*(?P<v>" + _NUMBER + r")\s*ppm")
_SNR = re.compile(r"S/N\s*=\s*(?P<v>" + _NUMBER + ")")
_VERSION = re.compile(r"LCModel\s*\(Version\s+(?P<v>[^)\s]+)\)")


@dataclass(frozen=True, eq=False)
class LCModelResult:
    """Metabolite estimates from one LCModel fit.

    Attributes
    ----------
    concentrations : pandas.DataFrame
        Indexed by metabolite name as LCModel wrote it (``NAA``, ``-CrCH2``,
        ``Glu+Gln``; the ``.CSV`` truncates long names, e.g. ``MM14+Lip13a+L``),
        with float columns ``conc``, ``sd_pct`` (the %SD, i.e. the Cramer-Rao lower
        bound in percent; 999 marks a failed fit) and ``ratio`` (conc divided by the
        concentration of ``ratio_reference``).
    ratio_reference : str
        Denominator of the ratio column, e.g. ``"Cr+PCr"`` or ``"Cr"``.
    fwhm_ppm : float or None
        Linewidth from ``$$MISC``; None for ``.CSV`` input.
    snr : float or None
        Signal-to-noise ratio from ``$$MISC``; None for ``.CSV`` input.
    version : str or None
        LCModel version from the first line, e.g. ``"6.3-1B"``; None for ``.CSV``.
    path : Path
        The file that was read.
    """

    concentrations: pd.DataFrame
    ratio_reference: str
    fwhm_ppm: float | None
    snr: float | None
    version: str | None
    path: Path


def _read_lines(path: Path, kind: str) -> list[str]:
    """Decode a file leniently (bad bytes become U+FFFD) and split into lines; an
    empty (or blank) file is an error: the fit that wrote it failed."""
    if not path.is_file():
        raise FileNotFoundError(
            f"LCModel {kind} file not found: {path}. Check the path, or re-run "
            f"LCModel with the {kind} output enabled."
        )
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    if not any(ln.strip() for ln in lines):
        raise CohortFormatError(
            f"{path}: the file is empty: the LCModel fit probably failed. Check its "
            ".print output (or re-run LCModel for this spectrum)."
        )
    return lines


def concentration_frame(rows: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    """Build the concentrations frame from name -> (conc, sd_pct, ratio)."""
    frame = pd.DataFrame.from_dict(
        rows, orient="index", columns=["conc", "sd_pct", "ratio"], dtype="float64"
    )
    frame.index.name = "metabolite"
    return frame


def read_lcmodel_table(path: str | Path) -> LCModelResult:
    """Read an LCModel ``.table`` file (``LTABLE`` output), or the concentration
    and misc. tables at the head of a ``.coord`` file (``LCOORD``), which hold the
    same values.

    Parameters
    ----------
    path : str or Path
        Path to the ``.table`` (or ``.coord``) file.

    Returns
    -------
    LCModelResult
        Concentrations with %SD and ratios, FWHM, S/N and the LCModel version.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CohortFormatError
        If the fit failed (no ``$$CONC`` section: LCModel's own ``FATAL``
        diagnostic is quoted), the column header has no ratio column, a
        concentration row cannot be parsed or names a metabolite twice, or the
        table is truncated.

    Examples
    --------
    >>> res = read_lcmodel_table("tests/data/real/lcmodel/svs_97.TABLE")
    >>> res.version, res.fwhm_ppm, res.snr, res.concentrations.loc["NAA", "sd_pct"]
    ('6.3-1B', 0.043, 13.0, np.float64(11.0))
    """
    path = Path(path)
    lines = _read_lines(path, path.suffix.lower() or ".table")
    start = next((i for i, ln in enumerate(lines) if _CONC_HEADER.match(ln)), None)
    if start is None:
        fatal = _fatal_diagnostics(lines)
        if fatal:
            raise CohortFormatError(
                f"{path}: the LCModel fit failed, with no concentration table; "
                f"LCModel's diagnostic: {fatal}. See the LCModel manual's list of "
                "diagnostics, fix the control file or the spectrum, and re-run it."
            )
        raise CohortFormatError(
            f"{path}: no '$$CONC' section; this does not look like an LCModel .table "
            "file. Check that you passed the .table output (LTABLE/FILTAB), not the "
            ".ps or .print output, and that the fit finished."
        )
    n_rows = int(_CONC_HEADER.match(lines[start]).group("n")) - 1
    header_line = lines[start + 1] if start + 1 < len(lines) else ""
    ref_match = _RATIO_HEADER.search(header_line)
    if ref_match is None:
        raise CohortFormatError(
            f"{path}, line {start + 2}: expected the column header "
            f"'Conc.  %SD /<reference>  Metabolite', got {header_line.strip()!r}. "
            "Check that the file is an unedited LCModel .table output."
        )
    rows: dict[str, tuple[float, float, float]] = {}
    for offset in range(n_rows):
        index = start + 2 + offset
        text = lines[index] if index < len(lines) else ""
        if not text.strip() or text.startswith("$$"):
            raise CohortFormatError(
                f"{path}, line {index + 1}: the $$CONC header announces {n_rows} "
                f"metabolite rows but only {offset} were found; the file is "
                "truncated. Re-run LCModel or restore the complete .table file."
            )
        match = _CONC_ROW.match(text)
        if match is None:
            raise CohortFormatError(
                f"{path}, line {index + 1}: cannot parse concentration row "
                f"{text.strip()!r}; expected 'conc  %SD%  ratio  name' as LCModel "
                "writes it (e.g. ' 7.97E-02  11%   0.318 NAA'). Fix or re-export it."
            )
        if match["name"] in rows:
            raise CohortFormatError(
                f"{path}, line {index + 1}: metabolite {match['name']!r} appears a "
                "second time in the $$CONC table; which value is right cannot be "
                "told. Restore the unedited LCModel output."
            )
        rows[match["name"]] = (
            float(match["conc"]),
            float(match["sd"]),
            float(match["ratio"]),
        )
    misc = lines[start + 2 + n_rows :]
    fwhm = next((float(m["v"]) for ln in misc if (m := _FWHM.search(ln))), None)
    snr = next((float(m["v"]) for ln in misc if (m := _SNR.search(ln))), None)
    version = next((m["v"] for ln in lines[:start] if (m := _VERSION.search(ln))), None)
    return LCModelResult(
        concentration_frame(rows), ref_match["ref"], fwhm, snr, version, path
    )


def _fatal_diagnostics(lines: list[str]) -> str:
    """LCModel's ``FATAL`` lines of the ``$$DIAG`` table, joined; ``""`` if none."""
    start = next((i for i, ln in enumerate(lines) if _DIAG_HEADER.match(ln)), None)
    scope = lines[start + 1 :] if start is not None else lines
    fatal = [ln.strip() for ln in scope if _FATAL.search(ln)]
    return "; ".join(dict.fromkeys(fatal))[:300]


#: LCModel's outputs of one fit, by suffix (lower case); the first three hold the
#: concentrations, best first.
LCMODEL_OUTPUTS = (".table", ".csv", ".coord")
LCMODEL_SIBLINGS = (*LCMODEL_OUTPUTS, ".ps", ".print", ".control", ".raw", ".h2o")


def find_lcmodel_output(folder: Path, key: str) -> tuple[Path | None, list[str]]:
    """The LCModel output to read for subject-visit ``key``, and notes on what was
    chosen and on every file of ``folder`` left unread.

    ``<key>_voi-SMA_lcmodel`` with ``.table``, ``.csv`` or ``.coord`` (in that
    order of preference, suffix in any case: LCModel writes ``.TABLE`` and
    ``.CSV``); else the folder's only output of one of those kinds under another
    name. The other outputs of the same fit (``.ps``, ``.print``, ...) go
    without saying; any other file is named. Two candidates under other names
    are ambiguous: none is read, and the note says so.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("svs_97.TABLE", "svs_97.PS", "notes.txt"):
    ...     _ = (folder / name).write_text("x")
    >>> path, notes = find_lcmodel_output(folder, "sub-01")
    >>> path.name, len(notes)
    ('svs_97.TABLE', 2)
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None, []
    files = sorted(p for p in folder.iterdir() if p.is_file())
    stem = f"{key}_voi-SMA_lcmodel"
    kinds = {s: [p for p in files if p.suffix.lower() == s] for s in LCMODEL_OUTPUTS}
    chosen = next(
        (p for s in LCMODEL_OUTPUTS for p in kinds[s] if p.stem == stem), None
    )
    notes = []
    if chosen is None:
        for suffix in LCMODEL_OUTPUTS:
            stems = sorted({p.stem for p in kinds[suffix]})
            if len(stems) > 1:
                listed = ", ".join(stems)
                return None, [
                    f"{folder}: {len(stems)} LCModel {suffix} outputs ({listed}) and "
                    f"none named {stem}{suffix}: which is this visit's SMA voxel "
                    f"cannot be told, so none was read. Rename that one {stem}{suffix}."
                ]
            if stems:
                chosen = kinds[suffix][0]
                notes.append(
                    f"{folder}: read {chosen.name}, the folder's only LCModel "
                    f"{suffix} output (expected name {stem}{suffix})."
                )
                break
    if chosen is None:
        if files:
            notes.append(
                f"{folder}: no LCModel .table, .csv or .coord output among "
                f"{', '.join(p.name for p in files)}: MRS counts as not acquired."
            )
        return None, notes
    unread = [
        p.name
        for p in files
        if p != chosen
        and not (p.stem == chosen.stem and p.suffix.lower() in LCMODEL_SIBLINGS)
    ]
    if unread:
        notes.append(f"{folder}: not used: {', '.join(unread)} (read {chosen.name}).")
    return chosen, notes


def _csv_columns(path: Path, header: list[str]) -> tuple[list[str], str]:
    """Metabolite names and ratio reference from the ``.CSV`` header fields."""
    if header[:2] != ["Row", "Col"] or (len(header) - 2) % 3 or len(header) < 5:
        raise CohortFormatError(
            f"{path}, line 1: header starts {', '.join(header[:3])!r}; an LCModel "
            ".CSV header is 'Row, Col' then 'name, name %SD, name/reference' per "
            "metabolite. Check that you passed the LCModel .CSV (LCSV) output."
        )
    names = header[2::3]
    reference = header[4][len(names[0]) + 1 :]
    for i, name in enumerate(names):
        sd_col, ratio_col = header[3 + 3 * i], header[4 + 3 * i]
        if (
            sd_col != f"{name} %SD"
            or ratio_col != f"{name}/{reference}"
            or not reference
        ):
            raise CohortFormatError(
                f"{path}, line 1: columns {name!r}, {sd_col!r}, {ratio_col!r} are "
                f"not the expected '{name}', '{name} %SD', '{name}/<reference>' "
                f"(reference {reference!r} from the first metabolite). The header was "
                "edited or is not from LCModel; restore the original."
            )
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise CohortFormatError(
            f"{path}, line 1: metabolite columns {duplicated} appear more than once "
            "(LCModel truncates long names in the .CSV, which can make them collide). "
            "Read the .table output instead, which keeps full names."
        )
    return names, reference


def read_lcmodel_csv(path: str | Path) -> LCModelResult:
    """Read a single-voxel LCModel ``.CSV`` file (``LCSV`` output).

    Parameters
    ----------
    path : str or Path
        Path to the ``.CSV`` file. Metabolite names are kept as LCModel wrote them,
        including its truncation of long names (``MM14+Lip13a+L``).

    Returns
    -------
    LCModelResult
        Concentrations with %SD and ratios; ``fwhm_ppm``, ``snr`` and ``version``
        are None because the ``.CSV`` does not hold them.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CohortFormatError
        If the header is not an LCModel ``.CSV`` header, the file does not hold
        exactly one voxel row, or a value is not a number.

    Examples
    --------
    >>> res = read_lcmodel_csv("tests/data/real/lcmodel/svs_97.CSV")
    >>> res.ratio_reference, res.fwhm_ppm
    ('Cr+PCr', None)
    """
    path = Path(path)
    lines = [ln for ln in _read_lines(path, ".CSV") if ln.strip()]
    header = [f.strip() for f in lines[0].split(",")]
    names, reference = _csv_columns(path, header)
    if len(lines) != 2:
        raise CohortFormatError(
            f"{path}: holds {len(lines) - 1} voxel rows; this reader expects the "
            "single-voxel output (one header line and one value line). Split "
            "multi-voxel (CSI) output into one file per voxel."
        )
    values = [f.strip() for f in lines[1].split(",")]
    if len(values) != len(header):
        raise CohortFormatError(
            f"{path}, line 2: {len(values)} values for {len(header)} header columns. "
            "The file is truncated or edited; re-export it from LCModel."
        )
    numbers: list[float] = []
    for column, text in zip(header[2:], values[2:], strict=True):
        try:
            numbers.append(float(text))
        except ValueError:
            raise CohortFormatError(
                f"{path}, line 2: column {column!r} = {text!r} is not a number. "
                "Fix or re-export the file."
            ) from None
    rows = {
        name: (numbers[3 * i], numbers[3 * i + 1], numbers[3 * i + 2])
        for i, name in enumerate(names)
    }
    return LCModelResult(concentration_frame(rows), reference, None, None, None, path)
