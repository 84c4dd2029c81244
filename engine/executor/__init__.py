"""Where a sweep's cells run: this machine (local) or a Slurm cluster (slurm). The run folder
stays the single source of truth; an executor only changes where the process runs."""
