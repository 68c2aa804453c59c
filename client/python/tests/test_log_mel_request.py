"""npuk.log_mel without a daemon: what whisper's log_mel_spectrogram accepts
becomes the right `log_mel` request, answers are read and checked, and bad
input is refused with the reason before any call."""

import wave

import grpc
import numpy as np
import pytest

import npuk
from npuk import log_mel as lm
from npuk._proto import grpc_service_pb2 as pb


def params(req):
    return {k: v.int64_param for k, v in req.parameters.items()}


def test_float_audio_is_sent_as_fp32_unrounded():
    x = np.array([0.0, 1e-6, -0.5, 0.999], np.float64)
    req, frames, device = lm.build_request(x, 128, 480000)
    assert req.model_name == "log_mel"
    [t] = req.inputs
    assert (t.name, t.datatype, list(t.shape)) == ("audio", "FP32", [4])
    back = np.frombuffer(req.raw_input_contents[0], "<f4")
    np.testing.assert_array_equal(back, x.astype(np.float32))
    assert params(req) == {"n_mels": 128, "padding": 480000}
    assert frames == (4 + 480000) // 160 and device is None


def test_int16_arrays_and_s16le_bytes_are_sent_as_int16():
    pcm = np.array([0, 1, -32768, 32767], np.int16)
    a, _, _ = lm.build_request(pcm)
    b, _, _ = lm.build_request(pcm.astype("<i2").tobytes())
    for req in (a, b):
        assert req.inputs[0].datatype == "INT16"
        assert list(req.inputs[0].shape) == [4]
        assert req.raw_input_contents[0] == pcm.astype("<i2").tobytes()
        assert params(req) == {"n_mels": 80, "padding": 0}


def test_torch_tensors_are_accepted_like_whisper():
    torch = pytest.importorskip("torch")
    x = torch.linspace(-0.5, 0.5, 1000, dtype=torch.float64)
    req, frames, device = lm.build_request(x)
    assert req.inputs[0].datatype == "FP32" and frames == 6
    assert device == torch.device("cpu")


def wav(path, rate=16000, width=2, channels=1, n=3200):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        pcm = (np.arange(n * channels) % 200 - 100).astype("<i%d" % width)
        w.writeframes(pcm.tobytes())
    return pcm


def test_a_16k_mono_wav_path_is_read_without_ffmpeg(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no ffmpeg to fall back on
    pcm = wav(tmp_path / "a.wav")
    np.testing.assert_array_equal(npuk.load_pcm16(tmp_path / "a.wav"), pcm)
    req, frames, _ = lm.build_request(str(tmp_path / "a.wav"))
    assert req.inputs[0].datatype == "INT16" and frames == 20


def test_other_files_need_ffmpeg_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    wav(tmp_path / "b.wav", rate=44100)
    with pytest.raises(RuntimeError, match="apt-get install ffmpeg"):
        npuk.load_pcm16(tmp_path / "b.wav")
    (tmp_path / "c.mp3").write_bytes(b"ID3 not really")
    with pytest.raises(RuntimeError, match="needs the ffmpeg CLI"):
        lm.build_request(str(tmp_path / "c.mp3"))
    with pytest.raises(FileNotFoundError, match="no such audio file"):
        lm.build_request(str(tmp_path / "missing.wav"))


def test_bad_input_is_refused_with_the_reason():
    ok = np.zeros(1600, np.float32)
    with pytest.raises(ValueError, match="1001 bytes, an odd count"):
        lm.build_request(bytes(1001))
    with pytest.raises(ValueError, match=r"empty \(S = 0"):
        lm.build_request(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match=r"2 NaN or infinite samples \(the "
                       "first at index 3"):
        lm.build_request(np.array([0, 0, 0, np.nan, -np.inf], np.float32))
    for n_mels in (0, 64, 81, 80.0, True, "80"):
        with pytest.raises(ValueError, match="n_mels must be 80 or 128"):
            lm.build_request(ok, n_mels)
    for padding in (-1, 1.5, None):
        with pytest.raises(ValueError, match="padding must be an int >= 0"):
            lm.build_request(ok, 80, padding)
    with pytest.raises(ValueError, match="mono"):
        lm.build_request(np.zeros((1, 1600), np.float32))
    with pytest.raises(TypeError, match="float .* or int16"):
        lm.build_request(np.zeros(1600, np.uint8))


def response(shape, nbytes, name="features"):
    r = pb.ModelInferResponse(model_name="log_mel")
    o = r.outputs.add()
    o.name, o.datatype = name, "FP32"
    o.shape.extend(shape)
    r.raw_output_contents.append(
        np.arange(nbytes // 4, dtype="<f4").tobytes()[:nbytes])
    return r


def test_features_are_read_and_checked():
    f = lm.features_of(response([80, 3], 960), 80, 3)
    assert f.shape == (80, 3) and f.dtype == np.float32 and f[79, 2] == 239
    f.setflags(write=True)  # a writable copy, like whisper's tensor
    for bad in (response([80, 3], 956), response([128, 3], 960),
                response([80, 3], 960, name="log_mel")):
        with pytest.raises(npuk.NpukError) as e:
            lm.features_of(bad, 80, 3)
        assert e.value.code == grpc.StatusCode.INTERNAL


def test_output_type_follows_whisper():
    f = np.zeros((80, 2), np.float32)
    assert lm.to_output(f, None, None, as_numpy=True) is f
    torch = lm.torch_or_none()
    out = lm.to_output(f, None, None, as_numpy=False)
    if torch is None:
        assert out is f
    else:
        assert isinstance(out, torch.Tensor) and out.shape == (80, 2)


def test_message_limit_errors_say_what_to_do():
    req, _, _ = lm.build_request(np.zeros(160000, np.float32))
    e = lm.explain(npuk.NpukError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  "Received message larger than max (640123 "
                                  "vs. 4194304)"), req)
    assert "0.6 MB of FP32 audio, 10.0 s" in e.message
    assert "max_message_bytes" in e.message
    own = npuk.NpukError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                         "log_mel: 3000 frames ... over this server's message "
                         "limit")
    assert lm.explain(own, req) is own
    queue = npuk.NpukError(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full")
    assert lm.explain(queue, req) is queue


def test_patch_needs_whisper_and_says_so():
    import importlib.util
    if importlib.util.find_spec("whisper") is not None:
        pytest.skip("a whisper package is installed here")
    import npuk.whisper
    with pytest.raises(ImportError, match="needs openai-whisper importable"):
        npuk.whisper.patch(target="unix:/nonexistent.sock")
    assert not npuk.whisper.patched()


def test_frames_follow_whisper():
    assert lm.frames_for(16000) == 100
    assert lm.frames_for(16000, lm.N_SAMPLES) == 3100
