"""What the app and the Hub build on, without Gradio: the studio's run orchestration (`studio`),
the HTML report (`report`), Hub upload (`hub`), ZeroGPU (`zerogpu`) and model access (`access`)."""
