// AudioWorklet for live captions: hands the microphone's samples (mono, at the AudioContext's 24 kHz) to the
// page in blocks of 100 ms; the page turns them into pcm16 input_audio_buffer.append events.
"use strict";

const BLOCK = 2400;

class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(BLOCK);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      let offset = 0;
      while (offset < channel.length) {
        const n = Math.min(channel.length - offset, BLOCK - this.filled);
        this.block.set(channel.subarray(offset, offset + n), this.filled);
        this.filled += n;
        offset += n;
        if (this.filled === BLOCK) {
          this.port.postMessage(this.block);
          this.block = new Float32Array(BLOCK);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
