rule annotate_shard:
    input:
        videos=f"{RESULTS}/videos/{{generator}}/shard-{{shard}}.parquet",
    output:
        manifest=f"{RESULTS}/annotations/{{generator}}/shard-{{shard}}.parquet",
    log:
        f"{RESULTS}/annotations/{{generator}}/shard-{{shard}}.log",
    params:
        bv=BV,
        config=CONFIG_PATH,
        digest=section_digest("annotate"),
    conda:
        "../../envs/annotate.yaml"
    threads: 1
    resources:
        gpu=gpus_for("annotate"),
    shell:
        "{params.bv} annotate --config {params.config} --videos {input.videos} --out {output.manifest} > {log} 2>&1"


rule annotate_all:
    input:
        shard_files("{results}/annotations/{generator}/shard-{shard}.parquet"),
