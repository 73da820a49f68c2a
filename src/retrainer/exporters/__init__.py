"""What turns a spec into another tool's project: Airflow DAG files and DVC's dvc.yaml + params.yaml.

The exporters build on the stage graph, so they sit above the stages and the executor; the CLI is
their only importer, and the files they write call back into retrainer when they run.
"""
