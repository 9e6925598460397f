-- LÖVE configuration of the moonrl example.  Audio is off: the game makes no
-- sound, and under Xvfb (the headless test) there is no audio device.
function love.conf(t)
  t.identity = "moonrl-love"          -- save directory: ~/.local/share/love/moonrl-love
  t.version = "11.4"
  t.window.title = "moonrl — an agent learns to balance"
  t.window.width = 960
  t.window.height = 600
  t.window.vsync = 1
  t.modules.audio = false
  t.modules.sound = false
  t.modules.joystick = false
  t.modules.physics = false
  t.modules.video = false
end
