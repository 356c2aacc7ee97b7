"""Constants of Stable Diffusion 1.5 shared by the Python fixture and training tools."""

# SD1.5's scheduler/scheduler_config.json (PNDM), as released folders ship it.
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
    "trained_betas": None, "clip_sample": False,
}
