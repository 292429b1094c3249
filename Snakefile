# brokenvideos: prompts → generate → annotate → dataset → train → predict → evaluate → tables, and detect.
# Thin on purpose: paths and wiring live in workflow/rules/, every step is a `brokenvideos` CLI call.
from snakemake.utils import min_version, validate

min_version("8.20")


configfile: "config.yaml"


# The schema ships inside the package (the CLI finds it by name); its defaults are the only ones.
validate(config, "src/brokenvideos/schemas/config.schema.yaml", set_default=True)


include: "workflow/rules/common.smk"


envvars:
    "BROKENVIDEOS_CONFIG",


include: "workflow/rules/prompts.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/annotate.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/localize.smk"
include: "workflow/rules/detect.smk"
include: "workflow/rules/robustness.smk"


# The default target: the dataset, the localization tables (Table 2) and the detection tables
# (He et al. Tables I and III, Sora labels, VID-AID) and the robustness tables (He et al. Table II).
# `snakemake tables`, `detect_all` or `robustness_all` builds one side only.
rule all:
    input:
        rules.dataset.output,
        rules.tables.output,
        rules.detect_all.input,
        rules.robustness_all.input,
    default_target: True
