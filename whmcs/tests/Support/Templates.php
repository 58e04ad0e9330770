<?php

namespace JetpackTests\Support;

/**
 * Renders the module's Smarty templates as WHMCS does (WHMCS's client area and its email
 * templates are Smarty): Debian's smarty4 (`ensure_php` installs it), compiled into a
 * temporary directory of this process.
 */
final class Templates
{
    /**
     * @return \Smarty a Smarty with its compile directory under the system's temp directory
     */
    private static function smarty()
    {
        require_once 'smarty4/Smarty.class.php';
        $smarty = new \Smarty();
        $dir = sys_get_temp_dir() . '/jetpack-smarty-' . getmypid();
        $smarty->setCompileDir($dir);
        $smarty->setCacheDir($dir);
        return $smarty;
    }

    /**
     * Renders a template file of the module with these variables.
     *
     * @param string $path      relative to modules/servers/jetpack (e.g. templates/clientarea.tpl)
     * @param array  $variables name => value
     *
     * @return string the HTML
     */
    public static function renderFile($path, array $variables)
    {
        $smarty = self::smarty();
        $smarty->assign($variables);
        return $smarty->fetch(JETPACK_MODULE_DIR . '/' . $path);
    }

    /**
     * Renders a template given as text (an email template's subject or body) with these
     * variables, as WHMCS renders an email with its merge fields.
     *
     * @param string $template
     * @param array  $variables name => value
     *
     * @return string
     */
    public static function renderString($template, array $variables)
    {
        $smarty = self::smarty();
        $smarty->assign($variables);
        return $smarty->fetch('string:' . $template);
    }
}
