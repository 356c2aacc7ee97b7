#!/usr/bin/env python3
"""Scheduler parity fixtures for the Diffusion module (Tests/DiffusionTests/Fixtures/schedulers).

Regenerate (deterministic; needs torch, diffusers, safetensors, numpy in tools/.venv):

    tools/.venv/bin/python tools/diffusion/make_scheduler_fixtures.py

Ground truth is the installed diffusers (the version is recorded in the metadata). Every case builds
its scheduler the way a diffusers user swaps samplers on an SD1.5 pipeline:

    base  = PNDMScheduler.from_config(<SD1.5 scheduler_config.json> + case overrides)
    sched = Target.from_config(base.config, **sampler_options)

so keys absent from the JSON take the target class's defaults (diffusers' `_use_default_values`).
Then it runs the StableDiffusion(Img2Img)Pipeline sampling loop on a [1, 4, 8, 8] latent with a
deterministic stand-in for the UNet, computed in torch float32:

    eps = 0.3 * scale_model_input(x, t) + 0.1 * cos(float32(t) / 100)

- text-to-image: g = torch.Generator().manual_seed(seed); x = randn(shape, g) * init_noise_sigma
- image-to-image (strength < 1): timesteps/begin index from the pipeline's get_timesteps;
  original = randn(shape, Generator().manual_seed(seed + 1000)); noise = randn(shape, g);
  x = add_noise(original, noise, timesteps[:1])
- step(eps, t, x, **kw) with kw = eta and generator=g as the pipeline's prepare_extra_step_kwargs
  passes them (DDIM: eta + generator; Euler, Euler ancestral, DPM-Solver: generator).

Files:
  schedulers.safetensors  per case `<name>.timesteps` (float32, after img2img truncation),
                          `<name>.sigmas` (σ-based schedulers), `<name>.init_noise_sigma` [1],
                          `<name>.samples` [evaluations + 1, 1, 4, 8, 8] (initial sample, then every
                          step's prev_sample); training schedules `train.<variant>.betas` /
                          `.alphas_cumprod`; the DDIM inversion trajectory `inversion.samples`;
                          numpy's float32 log of two training σ tables `numpy_log.<variant>.*`.
                          One metadata key, "fixtures": JSON with the case list (scheduler name,
                          config JSON text, steps, eta, strength, seed) and the inversion setup.
  sd15_scheduler_config.json  SD1.5's scheduler/scheduler_config.json (runwayml/stable-diffusion-v1-5).

The safetensors library writes metadata in hash order, so a single key keeps the file reproducible.
Python is never run by the Swift tests.
"""
import json
import os

import diffusers
import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
)
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "..", "Tests", "DiffusionTests", "Fixtures", "schedulers"))
SHAPE = (1, 4, 8, 8)

# runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json, verbatim.
SD15 = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}

# Short sampler names -> (class, options forced on top of the config), as SchedulerFactory.
SAMPLERS = {
    "pndm": (PNDMScheduler, {}),
    "ddim": (DDIMScheduler, {}),
    "euler": (EulerDiscreteScheduler, {"use_karras_sigmas": False}),
    "euler-karras": (EulerDiscreteScheduler, {"use_karras_sigmas": True}),
    "euler-a": (EulerAncestralDiscreteScheduler, {}),
    "dpm++2m": (DPMSolverMultistepScheduler, {"solver_order": 2, "algorithm_type": "dpmsolver++", "use_karras_sigmas": False}),
    "dpm++2m-karras": (DPMSolverMultistepScheduler, {"solver_order": 2, "algorithm_type": "dpmsolver++", "use_karras_sigmas": True}),
    "DPMSolverMultistepScheduler": (DPMSolverMultistepScheduler, {}),
    "DDIMScheduler": (DDIMScheduler, {}),
}


def case(name, sampler, steps, overrides=None, eta=0.0, strength=1.0, seed=0, base=None):
    return dict(name=name, scheduler=sampler, steps=steps, overrides=overrides or {}, eta=eta,
                strength=strength, seed=seed, base=base)


def cases():
    out = []
    seed = 100
    # SD1.5's real config, every sampler, 10 and 25 steps.
    for s in ["pndm", "ddim", "euler", "euler-a", "dpm++2m", "dpm++2m-karras"]:
        for n in (10, 25):
            out.append(case(f"{s}_{n}", s, n, seed=seed)); seed += 1
    out.append(case("euler-karras_10", "euler-karras", 10, seed=seed)); seed += 1
    out.append(case("euler-karras_25", "euler-karras", 25, seed=seed)); seed += 1
    for n in (10, 25):
        out.append(case(f"ddim-eta0.5_{n}", "ddim", n, eta=0.5, seed=seed)); seed += 1
    # timestep_spacing variants (the non-default spacings of each class).
    variants = {"pndm": ["trailing", "linspace"], "ddim": ["trailing", "linspace"], "euler": ["trailing", "leading"],
                "euler-a": ["trailing", "leading"], "dpm++2m": ["trailing", "leading"], "dpm++2m-karras": ["trailing"],
                "euler-karras": ["leading"]}
    for s, spacings in variants.items():
        for sp in spacings:
            out.append(case(f"{s}_{sp}_10", s, 10, {"timestep_spacing": sp}, seed=seed)); seed += 1
    out.append(case("dpm++2m_trailing_25", "dpm++2m", 25, {"timestep_spacing": "trailing"}, seed=seed)); seed += 1
    out.append(case("ddim_trailing_25", "ddim", 25, {"timestep_spacing": "trailing"}, seed=seed)); seed += 1
    # v-prediction.
    for s in ["pndm", "ddim", "euler", "euler-a", "dpm++2m", "dpm++2m-karras"]:
        out.append(case(f"{s}_vpred_10", s, 10, {"prediction_type": "v_prediction"}, seed=seed)); seed += 1
    # img2img, strength 0.6.
    for s in ["pndm", "ddim", "euler", "euler-a", "dpm++2m", "dpm++2m-karras"]:
        out.append(case(f"{s}_img2img_10", s, 10, strength=0.6, seed=seed)); seed += 1
    out.append(case("dpm++2m-karras_img2img_25", "dpm++2m-karras", 25, strength=0.6, seed=seed)); seed += 1
    # Further DPM-Solver++ options and PNDM/DDIM class behaviours.
    out.append(case("dpm_sigmamin_10", "dpm++2m", 10, {"final_sigmas_type": "sigma_min"}, seed=seed)); seed += 1
    out.append(case("dpm_sigmamin_25", "dpm++2m", 25, {"final_sigmas_type": "sigma_min"}, seed=seed)); seed += 1
    out.append(case("dpm_order3_25", "DPMSolverMultistepScheduler", 25, {"solver_order": 3}, seed=seed)); seed += 1
    out.append(case("dpm_heun_25", "DPMSolverMultistepScheduler", 25, {"solver_type": "heun"}, seed=seed)); seed += 1
    out.append(case("dpm_order1_10", "DPMSolverMultistepScheduler", 10, {"solver_order": 1}, seed=seed)); seed += 1
    out.append(case("pndm_prk_10", "pndm", 10, {"skip_prk_steps": False}, seed=seed)); seed += 1
    # DDIM with the class defaults (linear betas, clip_sample and set_alpha_to_one true).
    out.append(case("ddim_defaults_10", "ddim", 10, seed=seed, base={"_class_name": "DDIMScheduler"})); seed += 1
    out.append(case("euler_squaredcos_10", "euler", 10, {"beta_schedule": "squaredcos_cap_v2"}, seed=seed)); seed += 1
    return out


def config_for(c):
    cfg = dict(SD15 if c["base"] is None else c["base"])
    cfg.update(c["overrides"])
    return cfg


def build(c):
    cls, forced = SAMPLERS[c["scheduler"]]
    cfg = config_for(c)
    loaded = PNDMScheduler.from_config(cfg) if cfg.get("_class_name") == "PNDMScheduler" else cls.from_config(cfg)
    return cls.from_config(loaded.config, **forced)


def stand_in_unet(x_in, t):
    tt = torch.as_tensor(t).to(torch.float32)
    return 0.3 * x_in + 0.1 * torch.cos(tt / 100)


def run_case(c):
    sched = build(c)
    steps = c["steps"]
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(c["seed"])
    timesteps = sched.timesteps
    if c["strength"] < 1:
        # StableDiffusionImg2ImgPipeline.get_timesteps + prepare_latents
        init_timestep = min(int(steps * c["strength"]), steps)
        t_start = max(steps - init_timestep, 0)
        timesteps = sched.timesteps[t_start * sched.order:]
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(t_start * sched.order)
        original = torch.randn(SHAPE, generator=torch.Generator().manual_seed(c["seed"] + 1000))
        noise = torch.randn(SHAPE, generator=g)
        x = sched.add_noise(original, noise, timesteps[:1])
    else:
        x = torch.randn(SHAPE, generator=g) * sched.init_noise_sigma
    import inspect
    accepted = set(inspect.signature(sched.step).parameters)
    kw = {}
    if "eta" in accepted:
        kw["eta"] = c["eta"]
    if "generator" in accepted:
        kw["generator"] = g
    samples = [x]
    for t in timesteps:
        x_in = sched.scale_model_input(x, t)
        eps = stand_in_unet(x_in, t)
        x = sched.step(eps, t, x, **kw).prev_sample
        samples.append(x)
    out = {
        f"{c['name']}.timesteps": timesteps.to(torch.float32).contiguous(),
        f"{c['name']}.init_noise_sigma": torch.tensor([float(sched.init_noise_sigma)], dtype=torch.float32),
        f"{c['name']}.samples": torch.stack(samples).contiguous(),
    }
    if isinstance(sched, (EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler)):
        out[f"{c['name']}.sigmas"] = sched.sigmas.to(torch.float32).contiguous()
    return out


TRAIN_VARIANTS = {
    "sd15": ({**SD15}, False),
    "linear": ({"beta_schedule": "linear"}, False),
    "squaredcos": ({"beta_schedule": "squaredcos_cap_v2"}, False),
    "sd15_zerosnr": ({**SD15, "rescale_betas_zero_snr": True}, True),
}


def training_schedules():
    out = {}
    for name, (cfg, _) in TRAIN_VARIANTS.items():
        s = DDIMScheduler.from_config(cfg)
        out[f"train.{name}.betas"] = s.betas.contiguous()
        out[f"train.{name}.alphas_cumprod"] = s.alphas_cumprod.contiguous()
    return out


def numpy_logs():
    # diffusers' _sigma_to_t uses np.log on the float32 training sigmas; numpy's SIMD float32 log
    # (AVX2/AVX-512 rational polynomial) is not correctly rounded, and the Swift port reproduces it.
    # Recorded so the Swift test checks the port on the real tables.
    out = {}
    for name, cfg in (("sd15", SD15), ("squaredcos", {"beta_schedule": "squaredcos_cap_v2"})):
        s = EulerDiscreteScheduler.from_config(cfg)
        sig = np.array(((1 - s.alphas_cumprod) / s.alphas_cumprod) ** 0.5)
        assert sig.dtype == np.float32
        out[f"numpy_log.{name}.sigmas"] = torch.from_numpy(sig.copy())
        out[f"numpy_log.{name}.log"] = torch.from_numpy(np.log(sig))
    return out


INVERSION = dict(steps=10, seed=7, overrides={"steps_offset": 0})


def inversion():
    """PnPInversion DirectInversion.ddim_loop with next_step (cond-only stand-in UNet)."""
    cfg = {**SD15, **INVERSION["overrides"]}
    sched = DDIMScheduler.from_config(PNDMScheduler.from_config(cfg).config)
    sched.set_timesteps(INVERSION["steps"])

    def next_step(model_output, timestep, sample):
        timestep, next_timestep = min(timestep - sched.config.num_train_timesteps // sched.num_inference_steps, 999), timestep
        alpha_prod_t = sched.alphas_cumprod[timestep] if timestep >= 0 else sched.final_alpha_cumprod
        alpha_prod_t_next = sched.alphas_cumprod[next_timestep]
        beta_prod_t = 1 - alpha_prod_t
        next_original_sample = (sample - beta_prod_t ** 0.5 * model_output) / alpha_prod_t ** 0.5
        next_sample_direction = (1 - alpha_prod_t_next) ** 0.5 * model_output
        return alpha_prod_t_next ** 0.5 * next_original_sample + next_sample_direction

    latent = torch.randn(SHAPE, generator=torch.Generator().manual_seed(INVERSION["seed"]))
    traj = [latent]
    n = len(sched.timesteps)
    for i in range(n):
        t = int(sched.timesteps[n - i - 1])
        eps = stand_in_unet(latent, t)
        latent = next_step(eps, t, latent)
        traj.append(latent)
    return {"inversion.samples": torch.stack(traj).contiguous(),
            "inversion.timesteps": sched.timesteps.to(torch.float32).contiguous()}


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    tensors = {}
    meta_cases = []
    for c in cases():
        tensors.update(run_case(c))
        meta_cases.append(dict(name=c["name"], scheduler=c["scheduler"], steps=c["steps"], eta=c["eta"],
                               strength=c["strength"], seed=c["seed"],
                               config=json.dumps(config_for(c), sort_keys=True)))
    tensors.update(training_schedules())
    tensors.update(inversion())
    tensors.update(numpy_logs())
    meta = dict(
        diffusers=diffusers.__version__, torch=torch.__version__, shape=list(SHAPE),
        cases=meta_cases,
        training={k: json.dumps(v[0], sort_keys=True) for k, v in TRAIN_VARIANTS.items()},
        rescale_zero_snr={k: v[1] for k, v in TRAIN_VARIANTS.items()},
        inversion=dict(steps=INVERSION["steps"], seed=INVERSION["seed"],
                       config=json.dumps({**SD15, **INVERSION["overrides"]}, sort_keys=True)),
    )
    path = os.path.join(OUT, "schedulers.safetensors")
    save_file(tensors, path, metadata={"fixtures": json.dumps(meta, sort_keys=True)})
    with open(os.path.join(OUT, "sd15_scheduler_config.json"), "w") as f:
        json.dump(SD15, f, indent=2)
        f.write("\n")
    print(f"wrote {path}: {len(meta_cases)} cases, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
