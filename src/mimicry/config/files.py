"""Config files read as data, outside Snakemake.

Snakemake reads a config file that starts with ``__use_yte__: true`` as a YTE template
and runs the Python inside it while it loads the file: such a file is code, like the
Snakefile. The project's own commands that read config files themselves
(``mimicry.reporting.report``, ``mimicry.robustness.study_like_mine``,
``mimicry.bayes.sbc``) read them as data and refuse a template unless ``--allow-yte``
says its author is trusted.
"""

import json
from pathlib import Path

import yaml

from mimicry.config.validation import ConfigError

YTE_KEY = "__use_yte__"
ALLOW_YTE_FLAG = "--allow-yte"
# Snakemake options that take config files (one or more each).
CONFIGFILE_OPTIONS = ("--configfile", "--configfiles")


class YteRefused(ConfigError):
    """A config file is a YTE template and running it was not allowed."""


def is_yte_template(path):
    """True when Snakemake would render path with YTE: a top-level ``__use_yte__``
    that is true in a file that is not JSON."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        json.loads(text)
        return False
    except ValueError:
        pass
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(document, dict) and bool(document.get(YTE_KEY))


def refuse_yte(paths, command):
    """Raise YteRefused naming every YTE template among paths."""
    templates = [str(path) for path in paths if is_yte_template(path)]
    if templates:
        raise YteRefused(
            f"{', '.join(templates)}: a YTE template (top-level '{YTE_KEY}: true'), "
            f"which runs the Python it contains when it is read. {command} reads config "
            f"files as data; pass {ALLOW_YTE_FLAG} only for a file whose author you trust "
            "(snakemake itself runs such a file at every start: see the docs' "
            "Security page, docs/security.md)."
        )


def read_config_file(path, allow_yte=False):
    """One config file as Snakemake reads it (JSON, else YAML; an empty file is {});
    a YTE template is rendered only when allow_yte, else YteRefused."""
    if is_yte_template(path):
        if not allow_yte:
            refuse_yte([path], "This command")
        from snakemake.common.configfile import load_configfile

        return load_configfile(str(path))
    text = Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError:
        document = yaml.safe_load(text) or {}
    # YTE drops a false __use_yte__ (a true one made this a template).
    if isinstance(document, dict):
        document.pop(YTE_KEY, None)
    return document


def configfiles_in_args(args):
    """The config files a snakemake command line names (``--configfile A B``,
    ``--configfile=A``, ``--configfiles ...``)."""
    files, taking = [], False
    for arg in args:
        option, equals, value = arg.partition("=")
        if option in CONFIGFILE_OPTIONS:
            taking = not equals
            if equals:
                files.append(value)
        elif taking and not arg.startswith("-"):
            files.append(arg)
        else:
            taking = False
    return files


def add_allow_yte_argument(parser):
    """The --allow-yte flag of an argparse command that reads config files."""
    parser.add_argument(
        ALLOW_YTE_FLAG,
        action="store_true",
        help="render config files that are YTE templates (this runs their Python)",
    )
