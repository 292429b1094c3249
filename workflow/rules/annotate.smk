rule annotate_shard:
    input:
        videos=f"{RESULTS}/videos/{{generator}}/shard-{{shard}}.parquet",
    output:
        manifest=f"{RESULTS}/annotations/{{generator}}/shard-{{shard}}.parquet",
    log:
        f"{RESULTS}/annotations/{{generator}}/shard-{{shard}}.log",
    params:
        bv=BV,
        digest=section_digest("annotate"),
    conda:
        "../../envs/annotate.yaml"
    threads: 1
    resources:
        gpu=gpus_for("annotate"),
        **rule_resources("annotate_shard"),
    shell:
        "{params.bv} annotate --config $BROKENVIDEOS_CONFIG --videos {input.videos} --out {output.manifest} > {log} 2>&1"


rule annotate_all:
    input:
        shard_files("{results}/annotations/{generator}/shard-{shard}.parquet"),


# Opt-in (`snakemake annotation_quality`): SAM2 masks from simulated clicks against the exact masks
# of the synthetic generator, per click budget. Needs annotate.sam2 (config + checkpoint).
rule annotation_quality:
    input:
        videos=f"{RESULTS}/dataset/videos.parquet",
    output:
        table=f"{RESULTS}/annotation_quality/quality.csv",
        figure=report(f"{RESULTS}/annotation_quality/quality.png", category="Annotation"),
    log:
        f"{RESULTS}/annotation_quality/quality.log",
    params:
        bv=BV,
        gt_root=f"{RESULTS}/generated_masks",
        clicks=" ".join(str(c) for c in config["annotate"].get("quality_clicks", [1, 2, 3, 5])),
    conda:
        "../../envs/annotate.yaml"
    threads: 2
    resources:
        gpu=gpus_for("annotate"),
        **rule_resources("annotation_quality"),
    shell:
        "{params.bv} annotation-quality --config $BROKENVIDEOS_CONFIG --videos {input.videos} "
        "--gt-root {params.gt_root} --clicks {params.clicks} --out {output.table} "
        "--figure {output.figure} > {log} 2>&1"
