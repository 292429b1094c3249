from brokenvideos.dataset.adapters import cli_flags as ingest_cli_flags

INGEST = {d["name"]: d for d in config["dataset"].get("ingest", [])}


rule ingest:
    output:
        str(P.ingest_manifest("{name}")),
    benchmark:
        str(P.benchmark("ingest", "{name}"))
    log:
        str(P.ingest_log("{name}")),
    params:
        bv=BV,
        root=lambda wc: INGEST[wc.name]["root"],
        # format, on_error and every option of the entry, as flags (adapters.cli_flags)
        extra=lambda wc: ingest_cli_flags(INGEST[wc.name]),
        results=P.root,
    conda:
        "../../envs/pipeline.yaml"
    resources:
        **rule_resources("ingest"),
    shell:
        "{params.bv} ingest --root {params.root} --name {wildcards.name} --out {output} "
        "--results {params.results} {params.extra} > {log} 2>&1"


rule dataset:
    input:
        videos=shard_files(P.shard_manifest),
        annotations=shard_files(P.annotation_manifest),
        ingested=expand(str(P.ingest_manifest("{name}")), name=INGEST),
        prompts=rules.prompts.output[0],
    output:
        videos=str(P.videos_table),
        splits=str(P.splits_table),
        stats=str(P.dataset_stats),
        figures=report(
            directory(str(P.dataset_figures)),
            patterns=["{name}.png"],
            caption="../report/dataset.rst",
            category="Dataset",
        ),
    benchmark:
        str(P.benchmark("dataset"))
    log:
        str(P.dataset_log),
    params:
        bv=BV,
        digest=section_digest("seed", "dataset"),
        out_dir=lambda wc, output: Path(output.videos).parent,
    conda:
        "../../envs/pipeline.yaml"
    resources:
        **rule_resources("dataset"),
    shell:
        "{params.bv} dataset --config $BROKENVIDEOS_CONFIG --videos {input.videos} --annotations {input.annotations} "
        "--ingested {input.ingested} --out-dir {params.out_dir} > {log} 2>&1"
