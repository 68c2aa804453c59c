"""OpenAI Whisper's log_mel_spectrogram re-implemented in numpy (float64):
periodic Hann 400, STFT n_fft 400 hop 160 center=True reflect, |X|^2 with
the last frame dropped, librosa's Slaney mel filters (sr 16000, n_fft 400,
n_mels 80), log10(clamp 1e-10), clamp to max - 8, (x + 4) / 4."""

import numpy as np

SR, N_FFT, HOP, N_MELS = 16000, 400, 160, 80


def _hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27
    return np.where(f >= min_log_hz,
                    min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz)
                    / logstep, mels)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27
    return np.where(m >= min_log_mel,
                    min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filters(sr=SR, n_fft=N_FFT, n_mels=N_MELS):
    """librosa.filters.mel(sr, n_fft, n_mels) with htk=False, norm='slaney'."""
    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0),
                                   n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    return weights * enorm[:, None]


def power_spectrum(audio):
    """|STFT|^2 [n_frames, 201] as Whisper computes it (last frame dropped)."""
    x = np.asarray(audio, dtype=np.float64)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    n = 1 + x.size // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n]
    spec = np.fft.rfft(frames * window, axis=1)
    return (np.abs(spec) ** 2)[:-1]


def log_mel_spectrogram(audio):
    mel = mel_filters() @ power_spectrum(audio).T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def speech(tmpdir, text):
    """16 kHz float32 speech made with espeak-ng and resampled by sox."""
    import shutil
    import subprocess
    import wave
    import pytest
    if not shutil.which("espeak-ng") or not shutil.which("sox"):
        pytest.skip("needs Debian packages espeak-ng and sox")
    raw, wav16 = str(tmpdir / "raw.wav"), str(tmpdir / "speech16k.wav")
    subprocess.run(["espeak-ng", "-w", raw, text], check=True)
    subprocess.run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", wav16],
                   check=True)
    with wave.open(wav16, "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0, wav16


def assert_close_to_whisper(ours, audio):
    ref = log_mel_spectrogram(audio)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert ours.dtype == np.float32
    err = np.abs(ours - ref)
    corr = np.corrcoef(ours.ravel(), ref.ravel())[0, 1]
    msg = "max %.4f mean %.5f corr %.6f" % (err.max(), err.mean(), corr)
    assert err.max() <= 0.02, msg
    assert err.mean() <= 0.006, msg
    assert corr >= 0.9995, msg
    return msg
