rule annotate_shard:
    input:
        videos=str(P.shard_manifest("{generator}", "{shard}")),
    output:
        manifest=str(P.annotation_manifest("{generator}", "{shard}")),
    benchmark:
        str(P.benchmark("annotate_shard", "{generator}", "{shard}"))
    log:
        str(P.annotation_log("{generator}", "{shard}")),
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
        shard_files(P.annotation_manifest),


# Opt-in (`snakemake annotation_quality`): SAM2 masks from simulated clicks against the exact masks
# of the synthetic generator, per click budget. Needs annotate.sam2 (config + checkpoint).
rule annotation_quality:
    input:
        videos=str(P.videos_table),
    output:
        table=str(P.annotation_quality_table),
        figure=report(str(P.annotation_quality_figure), category="Annotation"),
    benchmark:
        str(P.benchmark("annotation_quality"))
    log:
        str(P.annotation_quality_log),
    params:
        bv=BV,
        gt_root=str(P.generated_masks_root),
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
