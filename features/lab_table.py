"""Map a ready-made table's own names and codes onto the features-table contract.

A lab's export names its columns its own way (``Subject_ID``, ``Group``,
``Gender``) and codes its values its own way (group 1/0, sex 1/2).
:class:`InputMapping` says which column is which and what the codes mean, and
:meth:`InputMapping.apply` returns the table with the canonical metadata columns of
``python -m features extract`` (``participant_id``, ``diagnosis``, ``site``,
``age``, ``sex``, ``male``). Column names match case-insensitively; a near miss is
answered with the closest name. Training stores the mapping in the model card, so
scoring reads the same export the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

#: Values read as a sex without a --sex-map (case-insensitive).
SEX_WORDS = {"m": "M", "male": "M", "man": "M", "f": "F", "female": "F", "woman": "F"}


def parse_map(items: Iterable[str] | dict | None, flag: str) -> dict[str, str]:
    """``["1=ALS", "0=HC"]`` (or a dict) as ``{"1": "ALS", "0": "HC"}``, keys
    normalised as :func:`code` normalises cell values."""
    if not items:
        return {}
    pairs = items.items() if isinstance(items, dict) else None
    if pairs is None:
        pairs = []
        for item in items:
            key, sep, value = str(item).partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ValueError(
                    f"{flag} {item!r}: write CODE=VALUE pairs, e.g. {flag} 1=ALS 0=HC."
                )
            pairs.append((key, value))
    out: dict[str, str] = {}
    for key, value in pairs:
        k = code(key)
        if k in out and out[k] != str(value).strip():
            raise ValueError(f"{flag}: code {key!r} is mapped twice; map it once.")
        out[k] = str(value).strip()
    return out


def code(value: Any) -> str:
    """A cell as a lower-case code: 1, 1.0 and " 1 " are all "1"."""
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, int | float | np.number):
        f = float(value)
        return str(int(f)) if f.is_integer() else repr(f)
    text = str(value).strip().lower()
    try:
        f = float(text)
    except ValueError:
        return text
    return str(int(f)) if f.is_integer() else text


def find_column(
    table: pd.DataFrame, name: str, flag: str, source: str, required: bool = True
) -> str | None:
    """The column of ``table`` called ``name`` (exactly, else ignoring case and
    spaces); a missing required one names the closest column and the flag."""
    if name in table.columns:
        return name
    folded = {str(c).strip().lower(): c for c in table.columns}
    if name.strip().lower() in folded:
        return folded[name.strip().lower()]
    if not required:
        return None
    close = difflib.get_close_matches(
        name.strip().lower(), list(folded), n=1, cutoff=0.5
    )
    hint = f" The closest is {folded[close[0]]!r}." if close else ""
    raise ValueError(
        f"{source}: no column {name!r}.{hint} Name the column with {flag} "
        f"(columns: {', '.join(map(str, list(table.columns)[:12]))}"
        f"{' ...' if len(table.columns) > 12 else ''})."
    )


@dataclass(frozen=True)
class InputMapping:
    """Which columns of a ready-made table hold the metadata, and their codes.

    Parameters
    ----------
    label_column : str
        The diagnosis (labels); only read when labels are wanted.
    group_column, site_column, age_column, sex_column : str or None
        The participant (repeated visits share it), acquisition site, age in years
        and sex. ``None``: the canonical name (``participant_id``, ``site``,
        ``age``, ``sex``) when the table has it; without a participant column each
        row is its own participant.
    label_map, sex_map : dict of str to str
        Codes to classes (``{"1": "ALS", "0": "HC"}``) and to ``M``/``F``
        (``{"1": "M", "2": "F"}``); keys match cells case-insensitively and 1, 1.0
        and "1" alike. Without a label map the labels must be class names; without
        a sex map the sex must be M/F/male/female.

    Examples
    --------
    >>> t = pd.DataFrame({"Subject_ID": ["a", "b"], "Group": [1, 0],
    ...                   "Gender": [1, 2], "Age": [61, 58]})
    >>> m = InputMapping("group", "Subject_ID", sex_column="gender",
    ...                  label_map=["1=ALS", "0=HC"], sex_map={"1": "M", "2": "F"})
    >>> out, problems = m.apply(t, "lab.xlsx", ("ALS", "HC"))
    >>> out[["participant_id", "diagnosis", "sex", "male", "age"]].values.tolist()
    [['a', 'ALS', 'M', 1.0, 61.0], ['b', 'HC', 'F', 0.0, 58.0]]
    """

    label_column: str = "diagnosis"
    group_column: str | None = None
    site_column: str | None = None
    age_column: str | None = None
    sex_column: str | None = None
    label_map: dict[str, str] | None = None
    sex_map: dict[str, str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "label_map", parse_map(self.label_map, "--label-map"))
        sex = parse_map(self.sex_map, "--sex-map")
        bad = {k: v for k, v in sex.items() if v.upper() not in ("M", "F")}
        if bad:
            raise ValueError(
                f"--sex-map {bad}: map each code to M or F, e.g. --sex-map 1=M 2=F."
            )
        object.__setattr__(self, "sex_map", {k: v.upper() for k, v in sex.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the model card (``InputMapping(**d)`` reads it back)."""
        return asdict(self)

    def text_columns(self) -> list[str]:
        """The identifier columns a reader must keep as text."""
        return [c for c in (self.group_column, self.site_column) if c]

    def apply(
        self,
        table: pd.DataFrame,
        source: str,
        classes: Iterable[str] | None = None,
        *,
        required: bool = True,
    ) -> tuple[pd.DataFrame, dict[int, list[str]]]:
        """``table`` with the canonical metadata columns, and the bad cells by row.

        Parameters
        ----------
        table : DataFrame
        source : str
            Name of the input, for messages.
        classes : iterable of str, optional
            The class names labels may take; ``None`` leaves the labels alone
            (scoring).
        required : bool
            Whether a column the mapping names must exist (training); scoring
            passes False, as identifiers and covariates may be absent there.

        Returns
        -------
        table : DataFrame
            A copy with ``participant_id`` (text), ``diagnosis`` (when ``classes``
            is given), ``site`` (text), ``age`` (float), ``sex`` (M/F) and
            ``male`` (1.0/0.0) where the table has them; the source columns are
            renamed, not duplicated. A column whose name differs from a data
            dictionary name only in case takes the dictionary's name.
        problems : dict of int to list of str
            Per row (0-based), the cells that could not be read (an unmapped code,
            an age that is not a number), each naming the column, value and fix.

        Raises
        ------
        ValueError
            A named column that does not exist (with the closest name), or a
            canonical column that the mapping would overwrite.
        """
        out = table.copy(deep=False)  # columns are replaced, never changed in place
        problems: dict[int, list[str]] = {}
        renames = {}
        for canonical, name, flag in (
            ("participant_id", self.group_column, "--group-column"),
            ("site", self.site_column, "--site-column"),
            ("age", self.age_column, "--age-column"),
            ("sex", self.sex_column, "--sex-column"),
            (
                "diagnosis",
                self.label_column if classes is not None else None,
                "--label-column",
            ),
        ):
            found = find_column(
                out, name or canonical, flag, source, required=required and bool(name)
            )
            if found is None or found == canonical:
                continue
            if canonical in out.columns:
                raise ValueError(
                    f"{source}: {flag} {name!r} would replace the table's own "
                    f"{canonical!r} column; drop one of them, or name "
                    f"{flag} {canonical}."
                )
            renames[found] = canonical
        out = out.rename(columns=renames)
        out = out.rename(columns=_documented_names(out.columns))
        if "participant_id" in out:
            out["participant_id"] = out["participant_id"].astype("string").str.strip()
        if "site" in out:
            out["site"] = out["site"].astype("string").str.strip()
        if "age" in out:
            out["age"] = self._age(out, renames, problems)
        if "sex" in out:
            out["sex"] = self._sex(out, renames, problems)
            male = (out["sex"] == "M").astype(float).where(out["sex"].notna())
            out["male"] = male.astype(float)
        if classes is not None:
            out["diagnosis"] = self._labels(out, renames, classes, problems)
        return out, problems

    def _original(self, renames: dict[str, str], canonical: str) -> str:
        return next((k for k, v in renames.items() if v == canonical), canonical)

    def _age(self, out, renames, problems) -> pd.Series:
        name = self._original(renames, "age")
        raw = out["age"]
        if _numeric(raw):  # nothing to parse: every value given is a number
            return raw.astype(float)
        values = pd.to_numeric(raw.astype("string").str.strip(), errors="coerce")
        values = values.astype(float)
        given = raw.notna() & (raw.astype("string").str.strip() != "")
        for i in np.flatnonzero((given & values.isna()).to_numpy(dtype=bool)):
            _add(
                problems,
                i,
                f"{name} = {raw.iloc[i]!r} is not an age in years; "
                "write a number or leave the cell empty",
            )
        return values

    def _sex(self, out, renames, problems) -> pd.Series:
        name = self._original(renames, "sex")
        lookup = self.sex_map or SEX_WORDS
        fix = (
            f"add it to --sex-map {_show(self.sex_map)}"
            if self.sex_map
            else "give the codes with --sex-map, e.g. --sex-map 1=M 2=F"
        )
        return _recode(
            out["sex"],
            lambda v: lookup.get(code(v)),
            lambda v: f"{name} = {v!r} is not a sex; {fix}",
            problems,
        )

    def _labels(self, out, renames, classes, problems) -> pd.Series:
        name = self._original(renames, "diagnosis")
        classes = list(classes)
        upper = {c.upper(): c for c in classes}
        if self.label_map:
            fix = (
                f"it has no entry in --label-map {_show(self.label_map)}; add one, "
                "or leave the cell empty to leave the row out"
            )
            lookup = {k: upper.get(v.upper()) for k, v in self.label_map.items()}
            label = lambda v: lookup.get(code(v))  # noqa: E731
        else:
            fix = (
                f"expected one of {classes} or empty; map codes to classes with "
                "--label-map, e.g. --label-map 1=ALS 0=HC"
            )
            label = lambda v: upper.get(str(v).strip().upper())  # noqa: E731
        return _recode(
            out["diagnosis"], label, lambda v: f"{name} = {v!r}: {fix}", problems
        )


def _recode(column: pd.Series, lookup, complaint, problems) -> pd.Series:
    """``column`` through ``lookup`` (one call per distinct value); a value it
    maps to None is a problem (``complaint(value)``) in each row holding it."""
    values = column.astype(object).where(column.notna(), None)
    which, distinct = pd.factorize(values)  # a missing value is -1
    codes = [None if _blank(v) else lookup(v) for v in distinct]
    unread = [not _blank(v) and c is None for v, c in zip(distinct, codes, strict=True)]
    mapped = np.array([*codes, None], dtype=object)[which]  # -1: the last, None
    for i in np.flatnonzero(np.array([*unread, False])[which]):
        _add(problems, i, complaint(values.iloc[i]))
    return pd.Series(pd.array(mapped, dtype="string"), index=column.index)


def _documented_names(columns) -> dict[str, str]:
    """``NfL_PG_ML`` -> ``nfl_pg_ml``: a column whose lower-case name is in the data
    dictionary (and not already a column) takes that name."""
    from features.dictionary import describe

    taken = set(columns)
    return {
        c: str(c).lower()
        for c in columns
        if str(c) != str(c).lower()
        and str(c).lower() not in taken
        and describe(str(c).lower()) is not None
    }


def _numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _blank(value: Any) -> bool:
    return (
        value is None
        or value is pd.NA
        or (isinstance(value, float) and np.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _show(mapping: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in mapping.items())


def _add(problems: dict[int, list[str]], row: int, text: str) -> None:
    problems.setdefault(int(row), []).append(text)


__all__ = ["InputMapping", "code", "find_column", "parse_map"]
