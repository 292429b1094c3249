INGEST = {d["name"]: d for d in config["dataset"].get("ingest", [])}


rule ingest:
    output:
        f"{RESULTS}/ingest/{{name}}.parquet",
    log:
        f"{RESULTS}/ingest/{{name}}.log",
    params:
        bv=BV,
        root=lambda wc: INGEST[wc.name]["root"],
        extra=lambda wc: ingest_options(INGEST[wc.name]),
        results=lambda wc, output: Path(output[0]).parent.parent,
    conda:
        "../../envs/pipeline.yaml"
    resources:
        **rule_resources("ingest"),
    shell:
        "{params.bv} ingest --root {params.root} --name {wildcards.name} --out {output} "
        "--results {params.results} {params.extra} > {log} 2>&1"


rule dataset:
    input:
        videos=shard_files("{results}/videos/{generator}/shard-{shard}.parquet"),
        annotations=shard_files("{results}/annotations/{generator}/shard-{shard}.parquet"),
        ingested=expand(f"{RESULTS}/ingest/{{name}}.parquet", name=INGEST),
        prompts=rules.prompts.output[0],
    output:
        videos=f"{RESULTS}/dataset/videos.parquet",
        splits=f"{RESULTS}/dataset/splits.parquet",
        stats=f"{RESULTS}/dataset/stats.json",
        figures=report(
            directory(f"{RESULTS}/dataset/figures"),
            patterns=["{name}.png"],
            caption="../report/dataset.rst",
            category="Dataset",
        ),
    log:
        f"{RESULTS}/dataset/dataset.log",
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
